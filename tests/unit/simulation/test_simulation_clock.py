"""The virtual clock built from a job's trace files, and the round loop driven by it.

Settings: batch 10, 5 local steps, a model of 1,000,000 bytes (8e6 bits). A device at 2 ms per sample and 8000 kbps
takes 0.3 s to compute and 2 s to move the model twice: 2.3 s a round; at 16000 kbps 1.3 s; at 4000 kbps 4.3 s.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.simulation.clock import IDLE_STEP_S, VirtualClock
from fedscale_halor.simulation.traces import TraceError

MODEL_BYTES = 1_000_000


def _write(path: Path, data: object) -> str:
    path.write_bytes(pickle.dumps(data))
    return str(path)


def _job(tmp_path: Path, **changes: object) -> JobConfig:
    capacity = {0: {"computation": 2.0, "communication": 8000.0},
                1: {"computation": 2.0, "communication": 16000.0},
                2: {"computation": 2.0, "communication": 4000.0}}
    # client 2 is online only for the first 100 s of every 1000 s; the others always
    behave = {0: {"duration": 1000, "active": [0], "inactive": [1000], "finish_time": 1000, "model": "x"},
              1: {"duration": 1000, "active": [0], "inactive": [1000], "finish_time": 1000, "model": "x"},
              2: {"duration": 100, "active": [0], "inactive": [100], "finish_time": 1000, "model": "x"}}
    values: dict[str, object] = {
        "device_conf_file": _write(tmp_path / "client_device_capacity", capacity),
        "device_avail_file": _write(tmp_path / "client_behave_trace", behave),
        "num_participants": 2, "batch_size": 10, "local_steps": 5, "total_clients": 3, "rounds": 3,
        "overcommitment": 1.5, "random_behv": 0, "eval_interval": 3, "save_checkpoint": False,
    }
    values.update(changes)
    return JobConfig(**values)  # type: ignore[arg-type]


def test_a_job_without_a_device_trace_has_no_virtual_clock(tmp_path: Path) -> None:
    assert VirtualClock.from_job(JobConfig(), [0, 1], MODEL_BYTES) is None


def test_the_clock_plans_from_the_traces_and_moves_by_each_round(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None

    first = clock.plan(1, [0, 1, 2])
    clock.advance(first)

    assert first.completed == (1, 0) and first.duration_s == pytest.approx(2.3)
    assert [client for client, _ in first.stragglers] == [2]
    assert clock.now_s == pytest.approx(2.3)


def test_a_client_offline_now_is_not_feasible_and_one_going_offline_mid_round_drops(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None
    clock.now_s = 98.0  # client 2 needs 4.3 s but goes offline at 100 s

    dropping = clock.plan(1, [0, 1, 2])
    clock.now_s = 150.0
    feasible_later = clock.feasible([0, 1, 2])

    assert dropping.dropped == (2,)
    assert feasible_later == [0, 1]


def test_a_round_with_nobody_to_wait_for_still_moves_the_clock(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None

    clock.advance(clock.plan(1, []))

    assert clock.now_s == IDLE_STEP_S


def test_selectors_learn_each_clients_expected_round_and_online_share(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None

    infos = clock.client_infos({0: 10, 1: 20, 2: 30})

    assert infos[2].num_samples == 30 and infos[2].expected_duration_s == pytest.approx(4.3)
    assert infos[2].online_fraction == pytest.approx(0.1) and infos[0].online_fraction == 1.0


def test_the_columns_selectors_register_from_carry_the_same_knowledge(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None

    columns = clock.client_columns(np.array([0, 1, 2]), np.array([10, 20, 30]))

    assert columns.num_samples.tolist() == [10, 20, 30]
    assert columns.expected_duration_s is not None and columns.expected_duration_s[2] == pytest.approx(4.3)
    assert columns.online_fraction is not None
    assert columns.online_fraction.tolist() == pytest.approx([1.0, clock.client_infos({1: 0})[1].online_fraction, 0.1])


def test_a_missing_trace_file_is_named(tmp_path: Path) -> None:
    job = _job(tmp_path, device_conf_file=str(tmp_path / "nowhere"))

    with pytest.raises(TraceError, match="nowhere"):
        VirtualClock.from_job(job, [0, 1, 2], MODEL_BYTES)


def test_the_models_cost_scales_the_traces_compute_time(tmp_path: Path) -> None:
    # client 0: 0.3 s of compute x 10 = 3 s, plus 2 s of transfers
    clock = VirtualClock.from_job(_job(tmp_path, model_cost_scale=10.0), [0, 1, 2], MODEL_BYTES)
    assert clock is not None

    assert clock.plan(1, [0]).finish_s[0] == pytest.approx(5.0)


def test_a_round_with_nobody_after_some_history_takes_a_typical_round(tmp_path: Path) -> None:
    clock = VirtualClock.from_job(_job(tmp_path), [0, 1, 2], MODEL_BYTES)
    assert clock is not None
    clock.advance(clock.plan(1, [0, 1]))  # 2.3 s

    clock.advance(clock.plan(2, []))

    assert clock.expected_round_s() == pytest.approx(2.3) and clock.now_s == pytest.approx(4.6)
