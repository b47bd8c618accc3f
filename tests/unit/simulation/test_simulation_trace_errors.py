"""A trace file that cannot be used is an InputFileError: the command line shows its message, naming the file, what
is wrong and the config key whose value it is."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from fedscale_halor.errors import InputFileError
from fedscale_halor.simulation import traces
from fedscale_halor.simulation.traces import (
    BEHAVIOR_REMEDY,
    CAPACITY_REMEDY,
    TraceError,
    read_behavior_trace,
    read_device_capacity,
)


class RunsAShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_the_remedy_names_the_key_of_each_kind_of_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace"
    path.write_bytes(pickle.dumps([1, 2]))

    with pytest.raises(TraceError) as capacity:
        read_device_capacity(path)
    with pytest.raises(TraceError) as behavior:
        read_behavior_trace(path)

    problem = "expected a mapping from client id to entry, found a list"
    assert isinstance(capacity.value, InputFileError)
    assert (capacity.value.path, capacity.value.problem, capacity.value.remedy) == (path, problem, CAPACITY_REMEDY)
    assert str(behavior.value) == f"{path}: {problem}; {BEHAVIOR_REMEDY}"
    assert CAPACITY_REMEDY.startswith("device_conf_file ") and BEHAVIOR_REMEDY.startswith("device_avail_file ")


def test_a_hostile_availability_pickle_is_refused_with_its_key_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "client_behave_trace"
    path.write_bytes(pickle.dumps({1: RunsAShellCommand(marker)}))

    with pytest.raises(TraceError) as refused:
        read_behavior_trace(path)

    assert str(refused.value) == (f"{path}: refused to load the global {os.system.__module__}.system: trace files "
                                  f"may hold only dicts, lists, numbers and strings; {BEHAVIOR_REMEDY}")
    assert not marker.exists()


def test_a_missing_trace_names_the_file_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as missing:
        read_device_capacity(tmp_path / "absent")

    assert str(missing.value) == (f"{tmp_path / 'absent'}: cannot read the trace file (No such file or directory); "
                                  f"{CAPACITY_REMEDY}")


def test_a_trace_read_again_unchanged_is_not_parsed_again_and_a_changed_one_is(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a JSON capacity trace and a count of the file's parses
    trace = tmp_path / "capacity.json"
    trace.write_text(json.dumps({"1": {"computation": 10.0, "communication": 500.0}}))
    parses: list[Path] = []
    parse = traces._parse_entries
    monkeypatch.setattr(traces, "_parse_entries", lambda path, *rest: parses.append(Path(path)) or parse(path, *rest))

    # Execute
    first = traces.read_device_capacity(trace)
    again = traces.read_device_capacity(trace)
    trace.write_text(json.dumps({"1": {"computation": 20.0, "communication": 500.0}}))
    os.utime(trace, ns=(1, 1))  # a changed mtime, whatever the clock's resolution
    changed = traces.read_device_capacity(trace)

    # Assert
    assert first == again and first is not again
    assert changed[1].compute_ms_per_sample == 20.0
    assert parses == [trace, trace]
