"""The resolved config written with a run's logs: FedScale's layout, exact reload, no credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from fedscale_halor.config import config_to_dict, dump_config
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.jobfile import config_from_mapping, load_config


@dataclasses.dataclass(frozen=True)
class JobConfigWithCredentials(JobConfig):
    """A job section carrying credentials, as a dashboard integration would add."""

    wandb_api_key: str = ""
    hub_token: str = ""
    db_password: str = ""


def test_dict_keeps_fedscale_layout() -> None:
    # Prepare
    cfg = config_from_mapping({"worker_ips": ["10.0.0.1:[2]"], "job_conf": [{"rounds": 3}]}, None, environ={})

    # Execute
    data = config_to_dict(cfg)

    # Assert
    assert data["worker_ips"] == ["10.0.0.1:[2]"]
    assert data["auth"] == {"ssh_user": "", "ssh_private_key": "~/.ssh/id_rsa", "ssh_port": 0}
    assert all(isinstance(entry, dict) and len(entry) == 1 for entry in data["job_conf"])
    assert {"rounds": 3} in data["job_conf"]
    core = [f.name for f in dataclasses.fields(JobConfig) if f.name != "plugin_settings"]
    plugin_keys = [name for name, _ in cfg.job.plugin_settings.values()]
    assert "halor" in plugin_keys and "stale_update" in plugin_keys  # the built-in plug-ins' keys, written flat
    assert [next(iter(entry)) for entry in data["job_conf"]] == core + plugin_keys


def test_dump_then_reload_gives_an_equal_config(tmp_path: Path) -> None:
    # Prepare
    source = repository_root() / "benchmark" / "configs" / "google_speech" / "conf.yml"
    original = load_config(source, {"setup_commands": "source $HOME/env/bin/activate; echo ready"}, environ={})

    # Execute
    written = dump_config(original, tmp_path / "run" / "resolved_config.yml")
    reloaded = load_config(written, environ={})

    # Assert
    assert reloaded.deployment == original.deployment
    assert reloaded.job == original.job
    assert reloaded == dataclasses.replace(original, source=written)


def test_dump_lists_ignored_keys_in_its_header(tmp_path: Path) -> None:
    # Prepare
    cfg = config_from_mapping({"job_conf": [{"num_loaders": 2}]}, Path("conf.yml"), environ={})

    # Execute
    text = dump_config(cfg, tmp_path / "resolved.yml").read_text(encoding="utf-8")

    # Assert
    assert "# Loaded from: conf.yml" in text
    assert "num_loaders" in text.splitlines()[2]
    assert "num_loaders:" not in text


def test_credentials_are_redacted_and_empty_ones_stay_empty(tmp_path: Path) -> None:
    # Prepare
    base = config_from_mapping({}, None, environ={})
    job = JobConfigWithCredentials(wandb_api_key="abc123", hub_token="tok-9", db_password="")
    cfg = dataclasses.replace(base, job=job)

    # Execute
    text = dump_config(cfg, tmp_path / "resolved.yml").read_text(encoding="utf-8")

    # Assert
    entries = {key: value for entry in yaml.safe_load(text)["job_conf"] for key, value in entry.items()}
    assert entries["wandb_api_key"] == "<redacted>"
    assert entries["hub_token"] == "<redacted>"
    assert entries["db_password"] == ""
    assert "abc123" not in text
    assert "tok-9" not in text
