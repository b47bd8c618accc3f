"""FedDC end to end: the drifts live on the aggregator and travel with the tasks, so which executor trains a client,
and over which transport, changes nothing."""

import csv
from pathlib import Path

import pytest
import torch

from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.types import Weights

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def _synthetic(tmp_path: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(tmp_path / "data"), "data_set": "synthetic",
                "model": "digits_mlp", "rounds": 3, "eval_interval": 3, "total_clients": 20, "num_participants": 6,
                "local_steps": 5, "feddc": 1, "feddc_alpha": 0.1, "weighted_avg": False, "ps_port": 0, **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def _assert_identical(got: Weights, expected: Weights) -> None:
    assert got.keys() == expected.keys()
    for key, tensor in expected.items():
        assert torch.equal(got[key], tensor), key


def test_one_and_three_executors_give_the_same_feddc_model(tmp_path: Path) -> None:
    # Execute: clients land on different executors (and lanes) from round to round, their drifts follow them
    one = run_in_process(_synthetic(tmp_path, worker_ips="127.0.0.1:[1]"), echo=False)
    three = run_in_process(_synthetic(tmp_path, worker_ips="127.0.0.1:[3]"), echo=False)
    lanes = run_in_process(_synthetic(tmp_path, worker_ips="127.0.0.1:[1]", executor_threads=3), echo=False)
    plain = run_in_process(_synthetic(tmp_path, worker_ips="127.0.0.1:[1]", feddc=0), echo=False)

    # Assert
    _assert_identical(three.final_weights, one.final_weights)
    _assert_identical(lanes.final_weights, one.final_weights)
    assert any(not torch.equal(one.final_weights[key], plain.final_weights[key]) for key in one.final_weights)
    assert one.history[-1].test is not None and one.history[-1].test.top1 > 0.5


def test_a_resumed_feddc_job_ends_with_the_model_of_a_job_that_never_stopped(tmp_path: Path) -> None:
    # Prepare: the reference run; then a run cut after the checkpoint of round 3 of 6 (its drifts are in it)
    settings = {"rounds": 6, "gradient_policy": "fed-yogi", "yogi_eta": 0.01}
    reference = run_in_process(_synthetic(tmp_path, **settings), timestamp="whole", echo=False)
    run_in_process(_synthetic(tmp_path, **{**settings, "rounds": 3}), timestamp="cut", echo=False)

    # Execute
    resumed = run_in_process(_synthetic(tmp_path, **settings), timestamp="cut", echo=False, resume=True)

    # Assert
    assert (tmp_path / "logs" / "digits" / "cut" / "checkpoint" / "strategy.safetensors").is_file()
    assert [metrics.round for metrics in resumed.history] == [4, 5, 6]
    _assert_identical(resumed.final_weights, reference.final_weights)


@pytest.mark.slow
def test_grpc_executor_processes_give_the_feddc_model_of_the_memory_transport(tmp_path: Path) -> None:
    # Execute
    grpc = run_local(_synthetic(tmp_path, worker_ips="127.0.0.1:[2]"), timestamp="grpc", echo=False)
    memory = run_in_process(_synthetic(tmp_path, worker_ips="127.0.0.1:[1]"), timestamp="memory", echo=False)

    # Assert
    rows = list(csv.DictReader((grpc.run_dir / "metrics.csv").open()))
    assert [row["completed"] for row in rows] == ["6", "6", "6"]
    _assert_identical(grpc.final_weights, memory.final_weights)
