"""The loader: file problems, FedScale's layout, variable expansion and overrides."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from fedscale_halor.config import ConfigError
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.jobfile import config_from_mapping, load_config, with_overrides


def write_config(tmp_path: Path, text: str, name: str = "conf.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------- file problems ----------

def test_missing_file_is_named(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "absent.yml"

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path)

    # Assert
    assert str(path) in str(raised.value)
    assert "no such config file" in str(raised.value)


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "ps_ip: 127.0.0.1\njob_conf:\n    - rounds: [1, 2\n")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path)

    # Assert
    message = str(raised.value)
    assert message.startswith(f"{path}: line ")
    assert "invalid YAML" in message


def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "- rounds: 3\n- batch_size: 10\n")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path)

    # Assert
    assert str(raised.value) == f"{path}: expected a mapping of config keys at the top level, got a list"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "# nothing but a comment\n")

    # Execute / Assert
    with pytest.raises(ConfigError, match="got an empty document"):
        load_config(path)


def test_key_written_twice_in_one_mapping_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "ps_ip: 10.0.0.1\nps_ip: 10.0.0.2\n")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path)

    # Assert
    assert str(path) in str(raised.value)
    assert "line 2" in str(raised.value)
    assert "'ps_ip' twice" in str(raised.value)


# ---------- FedScale's layout ----------

def test_job_conf_list_and_top_level_keys_fill_both_sections(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, (
        "ps_ip: 10.0.0.7\n"
        "worker_ips:\n    - 10.0.0.8:[2,2]\n    - 10.0.0.9:[1]\n"
        "setup_commands:\n    - echo ready\n"
        "job_conf:\n    - job_name: demo\n    - rounds: 7\n    - batch_size: 16\n"))

    # Execute
    cfg = load_config(path, environ={})

    # Assert
    assert cfg.deployment.ps_ip == "10.0.0.7"
    assert cfg.deployment.worker_ips == ("10.0.0.8:[2,2]", "10.0.0.9:[1]")
    assert cfg.deployment.setup_commands == ("echo ready",)
    assert (cfg.job.job_name, cfg.job.rounds, cfg.job.batch_size) == ("demo", 7, 16)
    assert cfg.source == path


def test_deployment_key_inside_job_conf_goes_to_the_deployment() -> None:
    # Prepare
    data = {"job_conf": [{"job_name": "femnist"}, {"ps_port": "12345"}]}

    # Execute
    cfg = config_from_mapping(data, Path("conf.yml"), environ={})

    # Assert
    assert cfg.deployment.ps_port == 12345


def test_same_key_at_two_places_with_different_values_is_refused() -> None:
    # Prepare
    data = {"ps_port": 29501, "job_conf": [{"ps_port": 29600}]}

    # Execute
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(data, Path("conf.yml"), environ={})

    # Assert
    assert str(raised.value).startswith("conf.yml: job_conf.ps_port: given again with a different value (29600")


def test_job_key_at_the_top_level_is_refused_with_a_hint() -> None:
    # Prepare
    data = {"rounds": 3}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: rounds: a job key at the top level; move it into the job_conf"):
        config_from_mapping(data, Path("conf.yml"), environ={})


def test_job_conf_entry_that_is_not_a_mapping_is_refused() -> None:
    # Prepare
    data = {"job_conf": [{"rounds": 3}, "batch_size 10"]}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf\[1\]: expected a one-key mapping"):
        config_from_mapping(data, Path("conf.yml"), environ={})


def test_unknown_key_names_file_and_key_and_suggests_the_close_one(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "job_conf:\n    - num_particpants: 5\n")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    # Assert
    assert str(raised.value) == f"{path}: job_conf.num_particpants: unknown key; did you mean 'num_participants'?"


def test_unknown_auth_key_is_refused_with_a_hint() -> None:
    # Prepare
    data = {"auth": {"ssh_usr": "fl"}}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: auth.ssh_usr: unknown key; did you mean 'ssh_user'\?$"):
        config_from_mapping(data, Path("conf.yml"), environ={})


def test_refl_epochs_is_read_as_rounds() -> None:
    # Prepare
    data = {"job_conf": [{"epochs": 12}, {"decay_epoch": 4}]}

    # Execute
    cfg = config_from_mapping(data, None, environ={})

    # Assert
    assert (cfg.job.rounds, cfg.job.decay_round) == (12, 4)


def test_unsupported_keys_are_recorded_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    data = {"job_conf": [{"num_loaders": 4}, {"cuda_device": "cuda:1"}, {"clock_factor": 1.0}]}

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = config_from_mapping(data, Path("conf.yml"), environ={})

    # Assert
    assert cfg.unsupported_keys == ("num_loaders", "cuda_device", "clock_factor")
    assert len(caplog.records) == 1
    assert "num_loaders, cuda_device, clock_factor" in caplog.records[0].getMessage()


def test_no_warning_without_unsupported_keys(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    data = {"job_conf": [{"rounds": 2}]}

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        config_from_mapping(data, None, environ={})

    # Assert
    assert caplog.records == []


# ---------- variables ----------

def test_bare_and_braced_variables_expand_in_strings_and_lists() -> None:
    # Prepare
    data = {"worker_ips": ["$HOST_A:[1]", "${HOST_B}:[2]"],
            "job_conf": [{"data_dir": "${DATA}/cifar"}, {"job_name": "run_$TAG"}]}
    environ = {"HOST_A": "10.0.0.1", "HOST_B": "10.0.0.2", "DATA": "/mnt/data", "TAG": "a1"}

    # Execute
    cfg = config_from_mapping(data, None, environ=environ)

    # Assert
    assert cfg.deployment.worker_ips == ("10.0.0.1:[1]", "10.0.0.2:[2]")
    assert cfg.job.data_dir == "/mnt/data/cifar"
    assert cfg.job.job_name == "run_a1"


def test_expanded_variable_can_fill_a_number() -> None:
    # Prepare
    data = {"job_conf": [{"rounds": "$ROUNDS"}, {"learning_rate": "${LR}"}]}

    # Execute
    cfg = config_from_mapping(data, None, environ={"ROUNDS": "9", "LR": "0.01"})

    # Assert
    assert (cfg.job.rounds, cfg.job.learning_rate) == (9, 0.01)


def test_home_variables_default_to_the_repository_root() -> None:
    # Prepare
    data = {"exp_path": "$FEDSCALE_HALOR_HOME", "job_conf": [{"log_path": "${FEDSCALE_HOME}/logs"}]}

    # Execute
    cfg = config_from_mapping(data, None, environ={})

    # Assert
    assert cfg.deployment.exp_path == str(repository_root())
    assert cfg.job.log_path == f"{repository_root()}/logs"
    assert (repository_root() / "fedscale_halor" / "config" / "loader.py").is_file()


def test_undefined_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "job_conf:\n    - data_dir: $NO_SUCH_DATA_ROOT/femnist\n")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    # Assert
    assert str(raised.value) == f"{path}: job_conf.data_dir: environment variable $NO_SUCH_DATA_ROOT is not set"


def test_undefined_variable_inside_a_list_names_the_entry() -> None:
    # Prepare
    data = {"worker_ips": ["10.0.0.1:[1]", "${MISSING_HOST}:[1]"]}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: worker_ips\[1\]: environment variable \$MISSING_HOST"):
        config_from_mapping(data, Path("conf.yml"), environ={})


def test_process_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("FSH_TEST_DATA_ROOT", "/from/env")
    data = {"job_conf": [{"data_dir": "$FSH_TEST_DATA_ROOT/x"}]}

    # Execute
    cfg = config_from_mapping(data, None)

    # Assert
    assert cfg.job.data_dir == "/from/env/x"


def test_dollar_without_a_name_is_kept() -> None:
    # Prepare
    data = {"job_conf": [{"job_name": "cost_$5"}]}

    # Execute
    cfg = config_from_mapping(data, None, environ={})

    # Assert
    assert cfg.job.job_name == "cost_$5"


def test_tilde_expands_in_path_keys_only() -> None:
    # Prepare
    data = {"auth": {"ssh_private_key": "~/.ssh/fl_key"}, "exp_path": "~/fedscale_halor",
            "job_conf": [{"data_dir": "~/data"}, {"log_path": "~/logs"}, {"data_map_file": "~/map.csv"},
                         {"job_name": "~job"}]}
    home = os.path.expanduser("~")

    # Execute
    cfg = config_from_mapping(data, None, environ={})

    # Assert
    assert cfg.deployment.auth.ssh_private_key == f"{home}/.ssh/fl_key"
    assert cfg.deployment.exp_path == f"{home}/fedscale_halor"
    assert (cfg.job.data_dir, cfg.job.log_path, cfg.job.data_map_file) == (
        f"{home}/data", f"{home}/logs", f"{home}/map.csv")
    assert cfg.job.job_name == "~job"


# ---------- overrides ----------

def test_string_overrides_are_coerced_and_validated() -> None:
    # Prepare
    data = {"job_conf": [{"rounds": 50}, {"use_cuda": True}]}

    # Execute
    cfg = config_from_mapping(data, None, {"rounds": "3", "use_cuda": "false", "learning_rate": "0.01"},
                              environ={})

    # Assert
    assert (cfg.job.rounds, cfg.job.use_cuda, cfg.job.learning_rate) == (3, False, 0.01)


def test_overrides_reach_deployment_and_auth_keys() -> None:
    # Prepare
    base = config_from_mapping({}, None, environ={})

    # Execute
    cfg = with_overrides(base, {"ps_port": "30001", "auth.ssh_user": "fl", "job_conf.batch_size": 32,
                                "worker_ips": "10.0.0.1:[2,2]; 10.0.0.2:[1]"}, environ={})

    # Assert
    assert cfg.deployment.ps_port == 30001
    assert cfg.deployment.auth.ssh_user == "fl"
    assert cfg.job.batch_size == 32
    assert cfg.deployment.worker_ips == ("10.0.0.1:[2,2]", "10.0.0.2:[1]")
    assert base.job.batch_size == 10  # the original is untouched


def test_load_config_applies_overrides_last(tmp_path: Path) -> None:
    # Prepare
    path = write_config(tmp_path, "job_conf:\n    - rounds: 50\n    - gradient_policy: fed-avg\n")

    # Execute
    cfg = load_config(path, {"rounds": "4", "gradient_policy": "yogi"}, environ={})

    # Assert
    assert (cfg.job.rounds, cfg.job.gradient_policy) == (4, "fed-yogi")


def test_bad_override_value_is_named_as_an_override() -> None:
    # Prepare
    base = config_from_mapping({}, Path("conf.yml"), environ={})

    # Execute
    with pytest.raises(ConfigError) as raised:
        with_overrides(base, {"rounds": "ten"}, environ={})

    # Assert
    assert str(raised.value) == "conf.yml: override job_conf.rounds: expected an integer >= 1, got 'ten'"


def test_unknown_override_key_is_named_with_a_hint() -> None:
    # Prepare
    base = config_from_mapping({}, Path("conf.yml"), environ={})

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: override round: unknown key; did you mean 'rounds'\?$"):
        with_overrides(base, {"round": "3"}, environ={})


def test_override_breaking_a_cross_field_rule_is_refused() -> None:
    # Prepare
    base = config_from_mapping({"job_conf": [{"total_clients": 20}]}, Path("conf.yml"), environ={})

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf.num_participants: expected at most total_clients"):
        with_overrides(base, {"num_participants": "25"}, environ={})


def test_override_of_an_unsupported_key_is_recorded(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    base = config_from_mapping({}, None, environ={})

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = with_overrides(base, {"num_loaders": "4"}, environ={})

    # Assert
    assert cfg.unsupported_keys == ("num_loaders",)
    assert "num_loaders" in caplog.records[0].getMessage()
