import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from fedscale_halor.config.schema import DeploymentConfig, JobConfig
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.launch.plugins import settings_sections
from fedscale_halor.launch.resume_check import (
    CHANGES_LOG_NAME,
    HARMLESS_KEYS,
    ConfigChange,
    ConfigMismatchError,
    compare_configs,
    log_config_changes,
    write_run_config,
)


def _saved(**job: object) -> dict[str, object]:
    """A config in config.yml's layout, as YAML reads it back."""
    entries = {"job_name": "digits", "sample_seed": 1, "total_clients": 100, "rounds": 2, **job}
    return {"ps_ip": "127.0.0.1", "ps_port": 29501, "auth": {"ssh_user": ""},
            "job_conf": [{name: value} for name, value in entries.items()]}


def _config(tmp_path: Path, **job: object):
    entries = {"log_path": str(tmp_path / "logs"), "sample_seed": 1, "total_clients": 100, "rounds": 2, **job}
    data = {"worker_ips": ["127.0.0.1:[1]"], "job_conf": [{name: value} for name, value in entries.items()]}
    return config_from_mapping(data, None)


def test_a_changed_seed_and_client_count_are_named_with_both_values() -> None:
    comparison = compare_configs(_saved(), _saved(sample_seed=999, total_clients=50))

    assert comparison.training == (ConfigChange("sample_seed", 1, 999, harmless=False),
                                   ConfigChange("total_clients", 100, 50, harmless=False))
    assert comparison.harmless == ()


def test_more_rounds_and_another_port_are_harmless() -> None:
    saved = _saved()
    resolved = {**_saved(rounds=6), "ps_port": 0, "auth": {"ssh_user": "me"}}

    comparison = compare_configs(saved, resolved)

    assert comparison.training == ()
    assert [change.describe() for change in comparison.harmless] == [
        "ps_port (29501 -> 0)", "auth.ssh_user ('' -> 'me')", "rounds (2 -> 6)"]


def test_a_key_only_one_config_has_counts_as_a_change_of_training() -> None:
    comparison = compare_configs(_saved(halor_history=5), _saved(stale_update=2))

    assert [change.describe() for change in comparison.training] == [
        "stale_update ((not set) -> 2)", "halor_history (5 -> (not set))"]


def test_equal_configs_have_no_changes() -> None:
    assert compare_configs(_saved(), _saved()).changes == ()


def test_every_harmless_key_is_a_key_of_the_schema_or_of_a_built_in_plug_in() -> None:
    # a renamed key would otherwise drop out of the allow-list unnoticed
    known = {item.name for item in dataclasses.fields(JobConfig)}
    known |= {item.name for item in dataclasses.fields(DeploymentConfig) if item.name != "auth"}
    known |= {f"auth.{item.name}" for item in dataclasses.fields(DeploymentConfig().auth)}
    known |= {item.name for item in dataclasses.fields(DeploymentConfig().slurm)}  # written flat, as in job files
    known |= {item.name for section in settings_sections(()) for item in dataclasses.fields(section)}

    assert sorted(HARMLESS_KEYS - known) == []
    assert "sample_seed" not in HARMLESS_KEYS and "aggregator_entry" not in HARMLESS_KEYS


def test_a_resume_with_a_changed_seed_is_refused_and_leaves_config_yml_as_it_was(tmp_path: Path) -> None:
    # Prepare
    run_dir = tmp_path / "run"
    dump_config(_config(tmp_path), run_dir / "config.yml")
    before = (run_dir / "config.yml").read_bytes()

    # Execute
    with pytest.raises(ConfigMismatchError) as refused:
        write_run_config(_config(tmp_path, sample_seed=999, total_clients=50), run_dir, resume=True)

    # Assert
    # in the schema's order of the keys
    assert str(refused.value) == (
        f"cannot resume {run_dir}: its config.yml differs in keys that change what is trained: total_clients "
        "(100 -> 50), sample_seed (1 -> 999); pass --force-config to resume anyway")
    assert (run_dir / "config.yml").read_bytes() == before
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.yml"]


def test_a_forced_resume_keeps_the_former_config_and_records_the_changes(tmp_path: Path) -> None:
    # Prepare
    run_dir = tmp_path / "run"
    dump_config(_config(tmp_path), run_dir / "config.yml")
    before = (run_dir / "config.yml").read_bytes()

    # Execute: forced twice, so that the second keeps the first's config beside the original
    path, comparison = write_run_config(_config(tmp_path, sample_seed=999, rounds=4), run_dir, resume=True,
                                        force_config=True)
    write_run_config(_config(tmp_path, sample_seed=7, rounds=4), run_dir, resume=True, force_config=True)

    # Assert
    assert path == run_dir / "config.yml"
    assert [change.key for change in comparison.training] == ["sample_seed"]
    assert [change.key for change in comparison.harmless] == ["rounds"]
    assert (run_dir / "config.before-resume-1.yml").read_bytes() == before
    second = yaml.safe_load((run_dir / "config.before-resume-2.yml").read_text())
    assert {"sample_seed": 999} in second["job_conf"]
    assert {"sample_seed": 7} in yaml.safe_load(path.read_text())["job_conf"]
    record = (run_dir / CHANGES_LOG_NAME).read_text().splitlines()
    assert record[0].endswith("resume 1 with --force-config: config.yml before it kept as config.before-resume-1.yml")
    assert record[1:3] == ["  sample_seed (1 -> 999): changes what is trained", "  rounds (2 -> 4): harmless"]
    assert record[4] == "  sample_seed (999 -> 7): changes what is trained"


def test_a_resume_raising_only_the_rounds_goes_ahead_and_records_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    dump_config(_config(tmp_path), run_dir / "config.yml")

    _, comparison = write_run_config(_config(tmp_path, rounds=6), run_dir, resume=True)

    assert comparison.training == () and [change.describe() for change in comparison.harmless] == ["rounds (2 -> 6)"]
    assert (run_dir / "config.before-resume-1.yml").is_file()
    assert "  rounds (2 -> 6): harmless" in (run_dir / CHANGES_LOG_NAME).read_text()


def test_an_unchanged_resume_writes_no_record(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    dump_config(_config(tmp_path), run_dir / "config.yml")

    _, comparison = write_run_config(_config(tmp_path), run_dir, resume=True)

    assert comparison.changes == ()
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.yml"]


def test_a_run_folder_without_config_yml_is_refused_unless_forced(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    with pytest.raises(LaunchError, match=f"cannot resume {run_dir}: it has no config.yml to compare"):
        write_run_config(_config(tmp_path), run_dir, resume=True)
    write_run_config(_config(tmp_path), run_dir, resume=True, force_config=True)

    assert "kept as (none: there was no readable config)" in (run_dir / CHANGES_LOG_NAME).read_text()
    assert (run_dir / "config.yml").is_file()


def test_a_new_run_is_not_compared(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    dump_config(_config(tmp_path), run_dir / "config.yml")

    _, comparison = write_run_config(_config(tmp_path, sample_seed=5), run_dir)

    assert comparison.changes == ()
    assert {"sample_seed": 5} in yaml.safe_load((run_dir / "config.yml").read_text())["job_conf"]


def test_changes_are_logged_by_key_harmless_ones_as_info_forced_ones_as_warnings(
        caplog: pytest.LogCaptureFixture) -> None:
    comparison = compare_configs(_saved(), _saved(rounds=4, sample_seed=999))

    with caplog.at_level(logging.INFO, logger="fedscale_halor.test_resume_check"):
        log_config_changes(comparison, logging.getLogger("fedscale_halor.test_resume_check"))

    logged = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert logged[0] == ("INFO", "resume: rounds changed from 2 to 4 (does not change what is trained)")
    assert logged[1][0] == "WARNING" and "sample_seed changed from 1 to 999" in logged[1][1]
