"""Writing a config back in FedScale's layout: the "resolved config" saved with every run's logs.

Values are the resolved ones (variables expanded, defaults filled in), so the file documents exactly what ran and
reloads to an equal deployment and job. Credentials are never written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from fedscale_halor.config.known_keys import REDACTED, is_secret_key
from fedscale_halor.config.schema import ExperimentConfig

_JOB_CONF_KEY = "job_conf"


def config_to_dict(cfg: ExperimentConfig) -> dict[str, object]:
    """Deployment keys at the top level, ``auth`` as a mapping, ``job_conf`` as a list of one-key mappings."""
    job_entries = [{name: value} for name, value in _section_to_dict(cfg.job).items()]
    job_entries += [{name: _plain_value(name, value)} for name, value in cfg.job.plugin_settings.values()]
    return {**_section_to_dict(cfg.deployment), _JOB_CONF_KEY: job_entries}


def dump_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write ``cfg`` as YAML to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = ["# Resolved job configuration: variables expanded, defaults filled in, credentials redacted.",
              f"# Loaded from: {cfg.source if cfg.source is not None else 'an in-memory mapping'}"]
    if cfg.unsupported_keys:
        header.append("# Ignored keys (defined by FedScale/REFL/Halor, not supported yet): "
                      + ", ".join(cfg.unsupported_keys))
    body = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)
    target.write_text("\n".join(header) + "\n" + body, encoding="utf-8")
    return target


def _section_to_dict(section: object) -> dict[str, object]:
    # Reads the fields of the instance (not of the declared class) so any added field is written too.
    written: dict[str, object] = {}
    for field in dataclasses.fields(section):  # type: ignore[arg-type]
        if field.metadata.get("plugin_settings"):
            continue  # written beside the core's keys, flat as in job files
        value = getattr(section, field.name)
        if field.metadata.get("flat"):
            written.update(_section_to_dict(value))  # a section whose keys job files write at its parent's level
        else:
            written[field.name] = _plain_value(field.name, value)
    return written


def _plain_value(name: str, value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _section_to_dict(value)
    if is_secret_key(name) and value not in ("", None, ()):
        return REDACTED
    if isinstance(value, tuple):
        return list(value)
    return value
