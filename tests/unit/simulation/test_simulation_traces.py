from __future__ import annotations

import collections
import json
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from fedscale_halor.simulation.traces import (
    Availability,
    DeviceCapacity,
    TraceError,
    availability_to_fedscale,
    read_behavior_trace,
    read_device_capacity,
)

# An entry of FedScale's client_behave_trace as published: duration is the sum of the session lengths.
FEDSCALE_BEHAVIOR_ENTRY = {
    "duration": 211625,
    "inactive": [65881, 133574, 208292, 276575, 295006, 356236, 400906, 475099],
    "finish_time": 518400,
    "active": [12788, 100044, 188992, 271372, 276663, 352625, 356267, 441193],
    "model": "CPH1801",
}


def write_pickle(path: Path, content: Any) -> Path:
    with path.open("wb") as stream:
        pickle.dump(content, stream)
    return path


def write_json(path: Path, content: Any) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_reads_fedscale_device_capacity_pickle(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "client_device_capacity", {
        432802: {"computation": 162.0, "communication": 5648.109619499134},
        7: {"computation": 33, "communication": 1200, "dl_kbps": 1.0},
    })

    capacities = read_device_capacity(path)

    assert list(capacities) == [432802, 7]
    assert capacities[432802] == DeviceCapacity(162.0, 5648.109619499134)
    assert capacities[7] == DeviceCapacity(33.0, 1200.0)


def test_reads_fedscale_behavior_trace_pickle(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "client_behave_trace", {3834: FEDSCALE_BEHAVIOR_ENTRY})

    trace = read_behavior_trace(path)[3834]

    assert trace.finish_time == 518400.0
    assert trace.duration == 211625.0
    assert trace.active[:2] == (12788.0, 100044.0)
    assert trace.inactive[-1] == 475099.0
    assert trace.online_fraction == pytest.approx(211625 / 518400)
    assert trace.is_online(12788) and not trace.is_online(65881)
    assert trace.online_until(518400 + 20000) == pytest.approx(65881 - 20000)


def test_json_is_recognised_by_content_whatever_the_name(tmp_path: Path) -> None:
    json_without_extension = write_json(tmp_path / "client_behave_trace", {"3834": FEDSCALE_BEHAVIOR_ENTRY})
    pickle_named_json = write_pickle(tmp_path / "capacity.json", {1: {"computation": 5, "communication": 9}})

    behaviors = read_behavior_trace(json_without_extension)
    capacities = read_device_capacity(pickle_named_json)

    assert list(behaviors) == [3834]
    assert behaviors[3834].active == tuple(float(t) for t in FEDSCALE_BEHAVIOR_ENTRY["active"])
    assert capacities == {1: DeviceCapacity(5.0, 9.0)}


def test_is_online_and_online_until_within_one_period() -> None:
    trace = Availability(active=(10.0, 50.0), inactive=(20.0, 60.0), duration=20.0, finish_time=100.0)

    cases = [(t, trace.is_online(t), trace.online_until(t)) for t in (5, 10, 15, 20, 49.5, 55, 60, 99)]

    assert cases == [(5, False, 0.0), (10, True, 10.0), (15, True, 5.0), (20, False, 0.0),
                     (49.5, False, 0.0), (55, True, 5.0), (60, False, 0.0), (99, False, 0.0)]


def test_the_pattern_repeats_with_period_finish_time() -> None:
    trace = Availability(active=(10.0,), inactive=(20.0,), duration=10.0, finish_time=100.0)

    assert [trace.is_online(t) for t in (115, 215, 1015, 125, 1005)] == [True, True, True, False, False]
    assert trace.online_until(312.5) == pytest.approx(7.5)


def test_a_session_ending_at_the_period_runs_on_into_the_next_period() -> None:
    trace = Availability(active=(0.0, 80.0), inactive=(30.0, 100.0), duration=50.0, finish_time=100.0)

    assert trace.online_until(90) == pytest.approx(10 + 30)
    assert trace.online_until(190) == pytest.approx(40)
    assert trace.online_until(0) == pytest.approx(30)
    assert not trace.is_online(30)


def test_an_active_time_without_inactive_stays_online_to_the_period_end() -> None:
    trace = Availability(active=(0.0, 70.0), inactive=(20.0,), duration=50.0, finish_time=100.0)

    assert trace.is_online(99.9)
    assert trace.online_until(75) == pytest.approx(25 + 20)
    assert trace.online_fraction == pytest.approx(0.5)


def test_touching_sessions_are_one_stretch_and_full_coverage_is_forever() -> None:
    touching = Availability(active=(10.0, 20.0), inactive=(20.0, 30.0), duration=20.0, finish_time=100.0)
    whole_period = Availability(active=(0.0,), inactive=(100.0,), duration=100.0, finish_time=100.0)
    open_from_zero = Availability(active=(0.0,), inactive=(), duration=100.0, finish_time=100.0)

    assert touching.online_until(15) == pytest.approx(15)
    assert touching.is_online(20)
    assert whole_period.online_until(12345.6) == math.inf
    assert open_from_zero.online_until(0) == math.inf


class RunsAShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"echo pwned > {self.marker}",)


@pytest.mark.parametrize("reader", [read_device_capacity, read_behavior_trace])
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path: Path, reader: Any) -> None:
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "client_device_capacity", {1: RunsAShellCommand(marker)})

    with pytest.raises(TraceError) as refused:
        reader(path)

    assert f"{os.system.__module__}.system" in str(refused.value)
    assert str(path) in str(refused.value)
    assert not marker.exists()


def test_even_harmless_classes_are_refused(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "trace", collections.OrderedDict({1: {"computation": 1, "communication": 1}}))

    with pytest.raises(TraceError, match=r"collections\.OrderedDict"):
        read_device_capacity(path)


@pytest.mark.parametrize(("entry", "names"), [
    ({"computation": -3.0, "communication": 10.0}, "computation"),
    ({"computation": 3.0, "communication": float("nan")}, "communication"),
    ({"computation": 3.0}, "'communication'"),
    ({"computation": "fast", "communication": 10.0}, "computation"),
    ({"computation": True, "communication": 10.0}, "computation"),
    ([3.0, 10.0], "mapping"),
])
def test_bad_capacity_entries_name_the_file_and_the_client(tmp_path: Path, entry: Any, names: str) -> None:
    path = write_pickle(tmp_path / "client_device_capacity", {1: {"computation": 1, "communication": 1}, 7: entry})

    with pytest.raises(TraceError) as error:
        read_device_capacity(path)

    assert str(path) in str(error.value)
    assert "client 7" in str(error.value)
    assert names in str(error.value)


def behavior_entry(**changes: Any) -> dict[str, Any]:
    entry = {"duration": 20, "active": [10, 50], "inactive": [20, 60], "finish_time": 100, "model": "x"}
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


@pytest.mark.parametrize(("entry", "names"), [
    (behavior_entry(active=[50, 10], inactive=[60, 20]), "order"),
    (behavior_entry(active=[10, 15], inactive=[20, 60]), "order"),
    (behavior_entry(inactive=[20, 160]), "finish_time"),
    (behavior_entry(finish_time=None), "'finish_time'"),
    (behavior_entry(finish_time=0), "finish_time"),
    (behavior_entry(duration=float("nan")), "duration"),
    (behavior_entry(active=[10], inactive=[20, 60]), "'active' has 1"),
    (behavior_entry(active=[], inactive=[]), "empty"),
    (behavior_entry(active="10,50"), "'active'"),
    (behavior_entry(active=[10, float("inf")]), "'active'"),
])
def test_bad_behavior_entries_name_the_file_and_the_client(tmp_path: Path, entry: Any, names: str) -> None:
    path = write_json(tmp_path / "client_behave_trace.json", {"1": behavior_entry(), "7": entry})

    with pytest.raises(TraceError) as error:
        read_behavior_trace(path)

    assert str(path) in str(error.value)
    assert "client '7'" in str(error.value)
    assert names in str(error.value)


@pytest.mark.parametrize(("content", "names"), [
    (b"[1, 2]", "mapping"),
    (b"{}", "empty"),
    (b'{"seven": {"computation": 1, "communication": 1}}', "'seven'"),
    (b'{"1": {"computation": 1, "communication": 1}, "01": {"computation": 1, "communication": 1}}', "twice"),
    (b'{"1": {"computation": 1,', "JSON"),
    (pickle.dumps({1: {"computation": 1, "communication": 1}})[:-6], "pickle"),
    (b"", "pickle"),
])
def test_unusable_files_are_reported_with_their_path(tmp_path: Path, content: bytes, names: str) -> None:
    path = tmp_path / "client_device_capacity"
    path.write_bytes(content)

    with pytest.raises(TraceError) as error:
        read_device_capacity(path)

    assert str(path) in str(error.value)
    assert names in str(error.value)


def test_a_missing_file_is_a_trace_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        read_behavior_trace(tmp_path / "absent")


def test_writing_the_fedscale_layout_reads_back_the_same(tmp_path: Path) -> None:
    trace = Availability(active=(0.0, 80.5), inactive=(30.0,), duration=49.5, finish_time=100.0)

    layout = availability_to_fedscale(trace, model="Pixel")
    back = read_behavior_trace(write_pickle(tmp_path / "trace", {5: layout}))[5]

    assert layout == {"duration": 49.5, "inactive": [30], "finish_time": 100, "active": [0, 80.5], "model": "Pixel"}
    assert back == trace
