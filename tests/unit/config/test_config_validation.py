"""Typing and checking of values: wrong types, ranges, choices, booleans, numbers, aliases, cross-field rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedscale_halor.config import ConfigError
from fedscale_halor.config.known_keys import KEY_ALIASES, RECOGNIZED_UNSUPPORTED_KEYS
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, JobConfig
from fedscale_halor.config.validation import field_specs
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.launch.plugins import settings_sections

SOURCE = Path("conf.yml")


def job(**values: object) -> JobConfig:
    data = {"job_conf": [{key: value} for key, value in values.items()]}
    return config_from_mapping(data, SOURCE, environ={}).job


def job_error(**values: object) -> str:
    with pytest.raises(ConfigError) as raised:
        job(**values)
    return str(raised.value)


def test_out_of_range_value_is_reported_with_the_range() -> None:
    # Execute
    message = job_error(rounds=-3)

    # Assert
    assert message == "conf.yml: job_conf.rounds: expected an integer >= 1, got -3"


def test_bounded_float_out_of_range_is_reported() -> None:
    # Execute
    message = job_error(momentum=1.5)

    # Assert
    assert message == "conf.yml: job_conf.momentum: expected a number in [0.0, 1.0], got 1.5"


def test_range_bounds_are_inclusive() -> None:
    # Execute
    config = job(momentum=1.0, decay_factor=0.0, filter_less=0)

    # Assert
    assert (config.momentum, config.decay_factor, config.filter_less) == (1.0, 0.0, 0)


def test_port_upper_bound_is_checked() -> None:
    # Prepare
    data = {"ps_port": 70000}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: ps_port: expected an integer in \[0, 65535\], got 70000$"):
        config_from_mapping(data, SOURCE, environ={})


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("rounds", "ten", "expected an integer >= 1, got 'ten'"),
    ("rounds", 2.5, "expected an integer >= 1, got 2.5"),
    ("rounds", True, "expected an integer >= 1, got true"),
    ("learning_rate", "fast", "expected a number >= 0.0, got 'fast'"),
    ("learning_rate", [0.1], "expected a number >= 0.0, got [0.1]"),
    ("use_cuda", "maybe", "expected true or false, got 'maybe'"),
    ("use_cuda", 2, "expected true or false, got 2"),
    ("model", ["resnet18"], "expected a string, got ['resnet18']"),
    ("model", None, "expected a string, got null"),
    ("learning_rate", "nan", "expected a number >= 0.0, got 'nan'"),
])
def test_wrong_types_are_reported(key: str, value: object, expected: str) -> None:
    # Execute
    message = job_error(**{key: value})

    # Assert
    assert message == f"conf.yml: job_conf.{key}: {expected}"


def test_value_outside_the_choices_suggests_the_close_one() -> None:
    # Execute
    message = job_error(data_set="cifar")

    # Assert
    assert message == ("conf.yml: job_conf.data_set: expected one of 'digits', 'cifar10', 'fashion_mnist', "
                       "'femnist', 'google_speech', 'synthetic', got 'cifar'; did you mean 'cifar10'?")


def test_integer_choice_outside_the_list_is_reported() -> None:
    # Execute
    message = job_error(partitioning=5)

    # Assert
    assert message == "conf.yml: job_conf.partitioning: expected one of -1, 0, 1, 2, 3, 8, 9, got 5"


@pytest.mark.parametrize(("written", "expected"), [
    (True, True), (False, False), ("True", True), ("False", False), ("true", True), ("false", False),
    ("yes", True), ("no", False), (1, True), (0, False), ("1", True), ("0", False),
])
def test_yaml_and_string_booleans_are_read(written: object, expected: bool) -> None:
    # Execute
    config = job(use_cuda=written, weighted_avg=written)

    # Assert
    assert config.use_cuda is expected
    assert config.weighted_avg is expected


@pytest.mark.parametrize(("key", "written", "expected"), [
    ("rounds", "10", 10),
    ("rounds", " 10 ", 10),
    ("filter_more", "1e15", 10**15),
    ("filter_more", 1e3, 1000),
    ("learning_rate", "0.5", 0.5),
    ("learning_rate", 1, 1.0),
    ("yogi_eta", "3e-3", 0.003),
    ("yogi_tau", "1e-8", 1e-8),
    ("sample_seed", "-7", -7),
])
def test_numbers_are_coerced_from_clean_literals_and_ints(key: str, written: object, expected: object) -> None:
    # Execute
    value = getattr(job(**{key: written}), key)

    # Assert
    assert value == expected
    assert type(value) is type(expected)


def test_number_in_a_string_field_is_read_as_text() -> None:
    # Execute
    config = job(job_name=2024)

    # Assert
    assert config.job_name == "2024"


def test_null_means_empty_for_optional_paths() -> None:
    # Execute
    config = job(data_map_file=None)

    # Assert
    assert config.data_map_file == ""


@pytest.mark.parametrize(("written", "expected"), [
    ("fed-avg", "fedavg"), ("FedAvg", "fedavg"), ("fedavg", "fedavg"), (None, "fedavg"),
    ("fedprox", "fed-prox"), ("prox", "fed-prox"), ("fed-prox", "fed-prox"),
    ("fedyogi", "fed-yogi"), ("yogi", "fed-yogi"), ("fedadam", "fed-adam"), ("adam", "fed-adam"),
])
def test_gradient_policy_aliases_are_normalized(written: object, expected: str) -> None:
    # Execute
    config = job(gradient_policy=written)

    # Assert
    assert config.gradient_policy == expected


def test_unknown_gradient_policy_is_refused() -> None:
    # Execute
    message = job_error(gradient_policy="fedsgd")

    # Assert
    assert message.startswith("conf.yml: job_conf.gradient_policy: expected one of 'fedavg', 'fed-prox'")


def test_worker_ips_must_follow_host_and_slot_counts() -> None:
    # Prepare
    data = {"worker_ips": ["10.0.0.1:[2,2]", "10.0.0.2"]}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: worker_ips\[1\]: expected 'host:\[n0,n1,...\]'"):
        config_from_mapping(data, SOURCE, environ={})


def test_single_worker_string_becomes_a_one_entry_tuple() -> None:
    # Prepare
    data = {"worker_ips": "10.0.0.1:[4]", "setup_commands": None}

    # Execute
    cfg = config_from_mapping(data, SOURCE, environ={})

    # Assert
    assert cfg.deployment.worker_ips == ("10.0.0.1:[4]",)
    assert cfg.deployment.setup_commands == ()


def test_non_string_list_entry_is_named() -> None:
    # Prepare
    data = {"setup_commands": ["echo ok", 3]}

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: setup_commands\[1\]: expected a string, got 3$"):
        config_from_mapping(data, SOURCE, environ={})


def test_more_participants_than_clients_is_refused() -> None:
    # Execute
    message = job_error(total_clients=20, num_participants=30, partitioning=9)

    # Assert
    assert message == ("conf.yml: job_conf.num_participants: expected at most total_clients (20) clients per round, "
                       "got 30")


def test_participants_are_not_bounded_by_total_clients_with_the_real_mapping() -> None:
    # Execute
    config = job(total_clients=20, num_participants=50, partitioning=0)

    # Assert
    assert config.num_participants == 50


def test_learning_rate_floor_above_the_rate_is_refused() -> None:
    # Execute
    message = job_error(learning_rate=0.01, min_learning_rate=0.1)

    # Assert
    assert message == "conf.yml: job_conf.min_learning_rate: expected a number <= learning_rate (0.01), got 0.1"


def test_every_schema_type_has_a_loading_rule() -> None:
    # Execute
    kinds = {spec.kind for config_class in (DeploymentConfig, AuthConfig, JobConfig)
             for spec in field_specs(config_class).values()}

    # Assert
    assert kinds <= {"str", "int", "float", "bool", "strings", "section"}


def test_recognized_unsupported_keys_never_shadow_schema_keys() -> None:
    # Prepare
    schema_keys = {name for config_class in (DeploymentConfig, AuthConfig, JobConfig, *settings_sections(()))
                   for name in field_specs(config_class)}

    # Execute
    overlap = schema_keys & (set(RECOGNIZED_UNSUPPORTED_KEYS) | set(KEY_ALIASES))

    # Assert
    assert overlap == set(), "a key that gained a schema field must leave known_keys.py"
    assert set(KEY_ALIASES.values()) <= schema_keys
