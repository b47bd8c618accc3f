"""Weights & Biases: one WandB run per job, in project ``wandb_project`` (default ``<data_set>_<model>``).

The run logs the same per-round metrics as the TensorBoard sink, stepped by the round. The test metrics are also
logged under ``test_by_time/`` against ``clock_s`` (the simulated clock), so the WandB UI plots time-to-accuracy.
The run's files go to ``<run folder>/wandb``; with ``WANDB_MODE=offline`` nothing leaves the machine and
``wandb sync <run folder>/wandb/offline-run-*`` uploads the run later.

The API key comes only from the environment (``WANDB_API_KEY``) or the user's ``wandb login``: it is never read
from the job's config, and never written to the run config, the logs or any file of the run folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedscale_halor.config.schema import DeploymentConfig, ExperimentConfig, JobConfig
from fedscale_halor.config.serialize import config_to_dict
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.logging.scalars import round_scalars
from fedscale_halor.types import RoundMetrics

_ONLINE_MODES = frozenset({"online", "run", "shared"})
_PARTITIONS = {-1: "iid", 0: "real", 1: "noniid", 2: "zipf", 3: "balanced", 8: "halordir", 9: "dir"}


class WandbStartError(RuntimeError):
    """WandB could not start a run (no credentials, no network, a bad entity or project)."""


def project_name(job: JobConfig) -> str:
    return job.wandb_project or f"{job.data_set}_{job.model}"


def run_name(job: JobConfig, timestamp: str, feature_parts: Sequence[str] = ()) -> str:
    """The parameters a sweep usually varies, so runs are told apart in the WandB tables at a glance;
    ``feature_parts``: what the job's plug-ins add (``PluginFactory.run_name_part``), in their order."""
    partition = _PARTITIONS.get(job.partitioning, f"part{job.partitioning}")
    if job.partitioning in (8, 9):
        partition += f"{job.dirichlet_alpha:g}"
    elif job.partitioning == 2:
        partition += f"{job.zipf_param:g}"
    parts = [job.sample_mode, job.gradient_policy, partition, f"p{job.num_participants}", *feature_parts,
             f"s{job.sample_seed}", timestamp]
    return "-".join(parts)


def job_settings(job: JobConfig) -> dict[str, object]:
    """The job's keys as one flat mapping, through the same writer as config.yml, so secrets stay redacted."""
    dumped = config_to_dict(ExperimentConfig(deployment=DeploymentConfig(), job=job))
    settings: dict[str, object] = {}
    for entry in dumped["job_conf"]:  # type: ignore[union-attr]
        settings.update(entry)
    return settings


class WandbSink(MetricsSink):
    def __init__(self, job: JobConfig, run_dir: Path, *, timestamp: str, name_parts: Sequence[str] = ()) -> None:
        try:
            # imported here: only jobs with use_wandb pay for importing wandb
            import wandb
        except ImportError as exc:
            raise WandbStartError("use_wandb is true but the wandb package is not installed "
                                  "(pip install wandb, or set use_wandb: false)") from exc
        self._wandb: Any = wandb
        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        # no prompt for a key and no capture of the terminal: a job must fail, not wait for typing, when the key
        # is missing, and its console output already goes to aggregator.log
        settings = wandb.Settings(console="off")
        _require_credentials(wandb)
        try:
            self._run: Any = wandb.init(
                project=project_name(job), entity=job.wandb_entity or None, tags=list(job.wandb_tags) or None,
                name=run_name(job, timestamp, name_parts), dir=str(run_dir), config=job_settings(job),
                settings=settings, reinit="finish_previous",
            )
        except Exception as exc:
            raise WandbStartError(_advice(f"wandb could not start a run: {exc}")) from exc
        for name in ("round", "clock_s"):
            self._run.define_metric(name)
        for pattern in ("train/*", "round/*", "test/*", "halor/*"):
            self._run.define_metric(pattern, step_metric="round")
        self._run.define_metric("test_by_time/*", step_metric="clock_s")
        self._previous_clock_s = 0.0

    def on_round(self, metrics: RoundMetrics) -> None:
        self._run.log(round_record(metrics, self._previous_clock_s), step=metrics.round)
        self._previous_clock_s = metrics.clock_s

    def close(self) -> None:
        self._run.finish()


def round_record(metrics: RoundMetrics, previous_clock_s: float) -> dict[str, float]:
    """One round as WandB history values; non-finite ones (no client finished) are left out, as in TensorBoard."""
    record: dict[str, float] = {"round": float(metrics.round), "clock_s": metrics.clock_s,
                                **round_scalars(metrics, previous_clock_s)}
    test = metrics.test
    if test is not None:
        for name, value in (("top1", test.top1), ("top5", test.top5), ("loss", test.loss)):
            record[f"test/{name}"] = value
            record[f"test_by_time/{name}"] = value
    for label, share in enumerate(metrics.class_distribution or ()):
        record[f"halor/class_{label}"] = share
    return {key: value for key, value in record.items() if math.isfinite(value)}


def _require_credentials(wandb: Any) -> None:
    """Online runs need a key already configured; wandb.init would otherwise ask for one at a terminal."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower() or wandb.setup().settings.mode
    if mode not in _ONLINE_MODES:
        return
    try:
        found = wandb.login(prompt=False, verify=False)
    except Exception as exc:
        raise WandbStartError(_advice(f"wandb login failed: {exc}")) from exc
    if not found:
        raise WandbStartError(_advice("use_wandb is true but no WandB API key is configured"))


def _advice(problem: str) -> str:
    return (f"{problem}. Set WANDB_API_KEY in the environment (or run `wandb login`), or run with WANDB_MODE=offline "
            f"to write the run under the run folder and sync it later, or set use_wandb: false.")
