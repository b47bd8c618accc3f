"""Job files read with every key the job may set: the core's and its plug-ins' (the built-in features' and those
its ``plugins`` key names). Every entry point loads configs through here; ``config/`` itself names no feature."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fedscale_halor.config import loader
from fedscale_halor.config.schema import DeploymentConfig, ExperimentConfig, JobConfig
from fedscale_halor.launch.plugins import settings_sections


def load_config(path: str | Path, overrides: Mapping[str, object] | None = None, *,
                environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    """``config.loader.load_config`` with the job's plug-ins' keys."""
    return loader.load_config(path, overrides, sections=settings_sections, environ=environ)


def config_from_mapping(data: Mapping[str, object], source: Path | None,
                        overrides: Mapping[str, object] | None = None, *,
                        environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    return loader.config_from_mapping(data, source, overrides, sections=settings_sections, environ=environ)


def with_overrides(cfg: ExperimentConfig, overrides: Mapping[str, object], *,
                   environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    return loader.with_overrides(cfg, overrides, sections=settings_sections, environ=environ)


def job_with(base: JobConfig | None = None, /, **keys: object) -> JobConfig:
    """``base`` (or the defaults) with ``keys`` set, core and plug-in keys alike, checked as a job file's are."""
    cfg = ExperimentConfig(deployment=DeploymentConfig(), job=base if base is not None else JobConfig())
    return with_overrides(cfg, keys).job
