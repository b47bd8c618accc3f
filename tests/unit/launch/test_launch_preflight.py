"""What `start` checks from the config alone, before a run folder or a process exists."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.loader import read_yaml_mapping
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.launch.preflight import check_before_start
from fedscale_halor.simulation.trace_generator import (
    generate_behavior_trace,
    generate_device_capacity,
    write_traces,
)
from fedscale_halor.simulation.traces import TraceError


def config_of(tmp_path: Path, **job: object) -> ExperimentConfig:
    return config_from_mapping({"job_conf": [{key: value} for key, value in job.items()]}, tmp_path / "conf.yml")


def test_an_unknown_model_names_the_file_the_key_and_the_closest_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        check_before_start(config_of(tmp_path, model="digits_cn"))

    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'conf.yml'}: job_conf.model: unknown model 'digits_cn' (known models: ")
    assert message.endswith("); did you mean 'digits_cnn'?")


def test_valid_traces_and_a_known_model_pass(tmp_path: Path) -> None:
    write_traces(tmp_path, generate_device_capacity(5, 0), generate_behavior_trace(5, 0), formats=("json",))

    check_before_start(config_of(
        tmp_path, model="digits_mlp", device_conf_file=str(tmp_path / "client_device_capacity.json"),
        device_avail_file=str(tmp_path / "client_behave_trace.json")))


def test_a_broken_availability_trace_is_refused_even_without_a_capacity_trace(tmp_path: Path) -> None:
    path = tmp_path / "client_behave_trace"
    path.write_bytes(pickle.dumps({1: {"active": [0]}}))

    with pytest.raises(TraceError, match="client 1: missing key"):
        check_before_start(config_of(tmp_path, device_avail_file=str(path)))


def test_a_quorum_of_zero_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config_of(tmp_path, quorum=0)

    assert str(raised.value) == (f"{tmp_path / 'conf.yml'}: job_conf.quorum: expected a number in (0.0, 1.0]: a "
                                 "quorum of 0 commits a round in which every client failed, got 0.0")


def test_an_unclosed_bracket_names_the_line_that_opened_it(tmp_path: Path) -> None:
    path = tmp_path / "conf.yml"
    path.write_text("job_conf:\n  - rounds: [3\n  - model: digits_cnn\n")

    with pytest.raises(ConfigError) as raised:
        read_yaml_mapping(path)

    assert str(raised.value) == (f"{path}: line 3: invalid YAML: expected ',' or ']', but got ':' (while parsing a "
                                 "flow sequence that starts on line 2)")
