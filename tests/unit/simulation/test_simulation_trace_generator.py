from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.simulation.trace_generator import (
    BANDWIDTH_RANGE_KBPS,
    COMPUTE_RANGE_MS,
    FEDSCALE_TRACE_PERIOD_S,
    generate_behavior_trace,
    generate_device_capacity,
    write_traces,
)
from fedscale_halor.simulation.traces import read_behavior_trace, read_device_capacity

CLIENTS = 2000


@pytest.fixture(scope="module")
def capacities_2000() -> dict:
    return generate_device_capacity(CLIENTS, seed=11)


@pytest.fixture(scope="module")
def behaviors_2000() -> dict:
    return generate_behavior_trace(CLIENTS, seed=11)


def test_the_same_seed_gives_the_same_traces_and_another_seed_others() -> None:
    first = (generate_device_capacity(50, 3), generate_behavior_trace(50, 3, horizon_s=86400.0))
    again = (generate_device_capacity(50, 3), generate_behavior_trace(50, 3, horizon_s=86400.0))
    other = (generate_device_capacity(50, 4), generate_behavior_trace(50, 4, horizon_s=86400.0))

    assert first == again
    assert first[0] != other[0]
    assert first[1] != other[1]


def test_keys_are_one_based_like_fedscale_files() -> None:
    assert list(generate_device_capacity(5, 0)) == [1, 2, 3, 4, 5]
    assert list(generate_behavior_trace(5, 0, horizon_s=3600.0)) == [1, 2, 3, 4, 5]


def test_compute_speed_is_log_normal_around_120_ms_spanning_an_order_of_magnitude(capacities_2000: dict) -> None:
    compute = np.array([capacity.compute_ms_per_sample for capacity in capacities_2000.values()])

    p1, p5, median, p95, p99 = np.percentile(compute, [1, 5, 50, 95, 99])

    assert 100 <= median <= 140
    assert 10 <= p95 / p5 <= 20
    assert 25 <= p99 / p1 <= 70
    assert COMPUTE_RANGE_MS[0] <= compute.min() and compute.max() <= COMPUTE_RANGE_MS[1]


def test_bandwidth_is_log_normal_around_5_mbps(capacities_2000: dict) -> None:
    bandwidth = np.array([capacity.bandwidth_kbps for capacity in capacities_2000.values()])

    p5, median, p95 = np.percentile(bandwidth, [5, 50, 95])

    assert 4200 <= median <= 5900
    assert 700 <= p5 <= 1300 and 19_000 <= p95 <= 35_000
    assert BANDWIDTH_RANGE_KBPS[0] <= bandwidth.min() and bandwidth.max() <= BANDWIDTH_RANGE_KBPS[1]


def test_compute_and_bandwidth_are_not_correlated(capacities_2000: dict) -> None:
    compute = np.log([capacity.compute_ms_per_sample for capacity in capacities_2000.values()])
    bandwidth = np.log([capacity.bandwidth_kbps for capacity in capacities_2000.values()])

    assert abs(np.corrcoef(compute, bandwidth)[0, 1]) < 0.1


def test_availability_spreads_from_rarely_to_mostly_online(behaviors_2000: dict) -> None:
    fractions = np.array([trace.online_fraction for trace in behaviors_2000.values()])

    p10, median, p90 = np.percentile(fractions, [10, 50, 90])

    assert 0.28 <= median <= 0.40
    assert 0.05 <= p10 <= 0.16
    assert 0.55 <= p90 <= 0.80


def test_behavior_entries_follow_fedscale_semantics(behaviors_2000: dict) -> None:
    traces = list(behaviors_2000.values())

    sessions = np.array([len(trace.active) for trace in traces])
    lengths = np.concatenate([np.subtract(trace.inactive, trace.active) for trace in traces])

    assert all(trace.finish_time == FEDSCALE_TRACE_PERIOD_S for trace in traces)
    assert all(trace.duration == pytest.approx(trace.online_fraction * trace.finish_time) for trace in traces)
    assert all(len(trace.active) == len(trace.inactive) for trace in traces)
    assert all(float(t).is_integer() for trace in traces[:50] for t in trace.active + trace.inactive)
    assert sessions.min() >= 1 and 8 <= np.median(sessions) <= 25
    assert lengths.min() > 0
    # Heavy right tail: the longest sessions are many times the typical one.
    assert np.percentile(lengths, 95) / np.median(lengths) > 4


def test_a_short_horizon_still_gives_every_device_a_session() -> None:
    traces = generate_behavior_trace(300, seed=5, horizon_s=600.0)

    assert all(trace.online_fraction > 0 and trace.inactive[-1] <= 600.0 for trace in traces.values())


def test_written_traces_read_back_equal_in_both_formats(tmp_path: Path) -> None:
    capacities = generate_device_capacity(20, seed=1)
    behaviors = generate_behavior_trace(20, seed=1, horizon_s=86400.0)

    paths = write_traces(tmp_path, capacities, behaviors, formats=("pickle", "json"))

    assert sorted(path.name for path in paths) == ["client_behave_trace", "client_behave_trace.json",
                                                   "client_device_capacity", "client_device_capacity.json"]
    assert read_device_capacity(tmp_path / "client_device_capacity") == capacities
    assert read_device_capacity(tmp_path / "client_device_capacity.json") == capacities
    assert read_behavior_trace(tmp_path / "client_behave_trace") == behaviors
    assert read_behavior_trace(tmp_path / "client_behave_trace.json") == behaviors


def test_the_pickles_hold_plain_dicts_in_fedscale_layout(tmp_path: Path) -> None:
    write_traces(tmp_path, generate_device_capacity(3, 2), generate_behavior_trace(3, 2, horizon_s=86400.0))

    with (tmp_path / "client_device_capacity").open("rb") as stream:
        capacity = pickle.load(stream)
    with (tmp_path / "client_behave_trace").open("rb") as stream:
        behavior = pickle.load(stream)

    assert type(capacity) is dict and list(capacity) == [1, 2, 3]
    assert set(capacity[1]) == {"computation", "communication"}
    assert set(behavior[1]) == {"duration", "inactive", "finish_time", "active", "model"}
    assert type(behavior[1]["active"]) is list and type(behavior[1]["finish_time"]) is int
    assert not (tmp_path / "client_device_capacity.json").exists()


@pytest.mark.parametrize("formats", [(), ("yaml",), ("pickle", "csv")])
def test_unknown_formats_are_refused(tmp_path: Path, formats: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="formats"):
        write_traces(tmp_path, generate_device_capacity(1, 0), generate_behavior_trace(1, 0), formats=formats)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="num_clients"):
        generate_device_capacity(0, 1)
    with pytest.raises(ValueError, match="horizon_s"):
        generate_behavior_trace(3, 1, horizon_s=60.0)
