"""Asynchronous buffered aggregation end to end: FedScale's async job files on digits, N executors = 1, resume.

The files (tests/unit/config/fixtures/upstream/fedscale/) are FedScale's, as published: ``async_fl/async_fl.yml``
and the older ``others/asyncFL.yml``. Each switches the mode on by naming FedScale's async aggregator as its
``aggregator_entry``. Only the scale is overridden (rounds, clients, the buffer), the data set (digits, embedded,
with its small model) and where the run writes.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
import torch

from fedscale_halor.config import ExperimentConfig
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.simulation.trace_generator import generate_behavior_trace, generate_device_capacity, write_traces

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "unit" / "config"))
from test_config_upstream_files import FIXTURES  # noqa: E402

pytestmark = pytest.mark.slow

SCALE = {"rounds": 4, "total_clients": 30, "async_buffer": 4, "eval_interval": 2, "data_set": "digits",
         "model": "digits_cnn", "data_map_file": "", "filter_less": 0, "use_cuda": False, "worker_ips": "127.0.0.1:[1]",
         "ps_ip": "127.0.0.1", "tensorboard": False}


def _fedscale_async(tmp_path: Path, fixture: str = "async_fl/async_fl.yml", **overrides: object) -> ExperimentConfig:
    home = tmp_path / "FedScale"
    for traces in (home / "benchmark" / "dataset" / "data" / "device_info", home / "dataset" / "data" / "device_info"):
        if not traces.exists():
            write_traces(traces, generate_device_capacity(30, seed=0), generate_behavior_trace(30, seed=0))
    path = tmp_path / Path(fixture).name
    shutil.copyfile(FIXTURES / "fedscale" / fixture, path)
    return load_config(path, environ={"FEDSCALE_HOME": str(home), "HOME": str(tmp_path)},
                       overrides={**SCALE, "data_dir": str(tmp_path / "digits"), "log_path": str(tmp_path / "logs"),
                                  **overrides})


def _assert_identical(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def test_fedscale_async_file_runs_buffered_asynchronous_rounds_on_digits(tmp_path: Path) -> None:
    # Prepare
    cfg = _fedscale_async(tmp_path)

    # Execute
    outcome = run_in_process(cfg, timestamp="async", echo=False)

    # Assert: the file's own async choices, and every round one version made of at most a buffer of updates
    job = cfg.job
    async_keys = ("async_mode", "arrival_interval", "max_staleness", "max_concurrency")
    assert tuple(job.value_of(key) for key in async_keys) == (True, 1.0, 3, 100)
    history = outcome.history
    assert [metrics.round for metrics in history] == [1, 2, 3, 4]
    assert all(1 <= metrics.completed <= 4 for metrics in history)
    clocks = [metrics.clock_s for metrics in history]
    assert clocks == sorted(clocks) and clocks[0] > 0
    assert history[-1].test is not None and history[-1].test.num_samples > 0
    log = (outcome.run_dir / "aggregator.log").read_text(encoding="utf-8")
    assert "round 1: version 1 at" in log and "folds 4 updates" in log
    assert (outcome.run_dir / "checkpoint" / "async_schedule.json").is_file()


def test_fedscale_older_async_file_runs_with_its_yogi_and_its_inert_malicious_factor(tmp_path: Path) -> None:
    # Prepare: the file FedScale kept as evals/configs/others/asyncFL.yml, with FedScale's async defaults for the
    # async keys it does not set (arrival_interval 3, max_concurrency 10, max_staleness 5)
    cfg = _fedscale_async(tmp_path, "others/asyncFL.yml", rounds=3, eval_interval=3,
                          num_participants=10)

    # Execute
    outcome = run_in_process(cfg, timestamp="older", echo=False)

    # Assert
    job = cfg.job
    assert (job.value_of("async_mode"), job.gradient_policy) == (True, "fed-yogi")
    assert (job.value_of("arrival_interval"), job.value_of("max_concurrency"), job.value_of("max_staleness")) == (
        3.0, 10, 5)
    assert "malicious_factor" in cfg.unsupported_keys
    assert [metrics.completed for metrics in outcome.history] == [4, 4, 4]
    assert outcome.history[-1].test is not None


def test_three_executors_give_the_model_of_one(tmp_path: Path) -> None:
    # Execute
    one = run_in_process(_fedscale_async(tmp_path), timestamp="one", echo=False)
    three = run_in_process(_fedscale_async(tmp_path, worker_ips="127.0.0.1:[3]"), timestamp="three", echo=False)

    # Assert
    assert [m.clock_s for m in one.history] == [m.clock_s for m in three.history]
    _assert_identical(one.final_weights, three.final_weights)


def test_a_resumed_async_job_ends_with_the_model_of_a_job_that_never_stopped(tmp_path: Path) -> None:
    # Prepare: the reference run, and a run cut after the checkpoint of round 2 of 4, with updates still pending
    reference = run_in_process(_fedscale_async(tmp_path), timestamp="whole", echo=False)
    run_in_process(_fedscale_async(tmp_path, rounds=2), timestamp="cut", echo=False)

    # Execute
    resumed = run_in_process(_fedscale_async(tmp_path), timestamp="cut", echo=False, resume=True)

    # Assert
    assert [metrics.round for metrics in resumed.history] == [3, 4]
    assert [m.clock_s for m in resumed.history] == [m.clock_s for m in reference.history[2:]]
    _assert_identical(resumed.final_weights, reference.final_weights)


def test_grpc_executor_processes_give_the_model_of_the_memory_transport(tmp_path: Path) -> None:
    # Execute
    grpc = run_local(_fedscale_async(tmp_path, worker_ips="127.0.0.1:[2]", rounds=2, ps_port=29631),
                     timestamp="grpc", echo=False)
    memory = run_in_process(_fedscale_async(tmp_path, rounds=2), timestamp="memory", echo=False)

    # Assert
    rows = list(csv.DictReader((grpc.run_dir / "metrics.csv").open()))
    assert [row["completed"] for row in rows] == ["4", "4"]
    _assert_identical(grpc.final_weights, memory.final_weights)


def test_oort_selects_the_check_ins_of_asynchronous_rounds(tmp_path: Path) -> None:
    # Execute
    outcome = run_in_process(_fedscale_async(tmp_path, sample_mode="oort"), timestamp="oort", echo=False)

    # Assert: every version folds a full buffer
    assert [metrics.completed for metrics in outcome.history] == [4, 4, 4, 4]
