"""Truncated or corrupt job records: each refusal names the file and what to do; `status` still shows the rest."""

import os
from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.launch.records import (
    JobRecord,
    ProcessRecord,
    RecordError,
    find_records,
    load_record,
    save_record,
)
from fedscale_halor.launch.status import format_statuses, run_statuses

INDEX_REMEDY = ("copy the run's own copy (<log_path>/digits/0101_000000/job.json) over it, or delete it once the "
                "run's processes are known to be gone")


def _saved(tmp_path: Path, jobs: Path, job: str = "digits", timestamp: str = "0101_000000") -> JobRecord:
    run_dir = tmp_path / "logs" / job / timestamp
    run_dir.mkdir(parents=True)
    record = JobRecord(job, timestamp, str(run_dir), launcher="submit", data_set=job, status="stopped",
                       processes=(ProcessRecord("aggregator", -1, "node-a", 4242),))
    save_record(record, jobs)
    return record


@pytest.mark.parametrize("text, problem", [
    ("", "not a valid job record (ValueError: the file is empty)"),
    ('{"job_name": "digits", "time', "not a valid job record (JSONDecodeError: Unterminated string starting at: "
                                     "line 1 column 24 (char 23))"),
], ids=["empty", "truncated"])
def test_an_unreadable_index_record_says_what_to_do(tmp_path: Path, text: str, problem: str) -> None:
    # Prepare
    _saved(tmp_path, tmp_path / "jobs")
    index = tmp_path / "jobs" / "digits" / "0101_000000.json"
    index.write_text(text)

    # Execute
    with pytest.raises(RecordError) as raised:
        find_records("digits", directory=tmp_path / "jobs")

    # Assert
    assert str(raised.value) == f"{index}: {problem}; {INDEX_REMEDY}"
    assert raised.value.path == index


def test_an_unreadable_run_folder_record_points_at_the_index_copy(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "jobs"))
    record = _saved(tmp_path, tmp_path / "jobs")
    copy = Path(record.run_dir) / "job.json"
    copy.write_text(copy.read_text()[:40])

    # Execute
    with pytest.raises(RecordError) as raised:
        load_record(copy)

    # Assert
    assert str(raised.value).startswith(f"{copy}: not a valid job record (JSONDecodeError: ")
    assert str(raised.value).endswith(f"; the jobs index keeps the same record: copy "
                                      f"{tmp_path / 'jobs' / 'digits' / '0101_000000.json'} over it")


def test_status_shows_the_readable_runs_and_names_the_unreadable_record(tmp_path: Path) -> None:
    # Prepare
    jobs = tmp_path / "jobs"
    _saved(tmp_path, jobs, "cifar10", "0202_000000")
    _saved(tmp_path, jobs)
    (tmp_path / "logs" / "cifar10" / "0202_000000" / "metrics.csv").write_text("round,test_top1\n1,0.5\n2,0.8x")
    index = jobs / "digits" / "0101_000000.json"
    index.write_text("{")

    # Execute
    statuses = run_statuses(jobs)
    text = format_statuses(statuses)

    # Assert
    assert [(s.record.job_name, s.state, s.last_round) for s in statuses] == [
        ("cifar10", "stopped", 2), ("digits", "unreadable", None)]
    assert text.splitlines()[1:] == [
        "cifar10       cifar10         0202_000000       stopped         2  0.5000  node-a",
        "-             digits          0101_000000       unreadable      -       -  ",
        "",
        "unreadable job records:",
        f"  {index}: not a valid job record (JSONDecodeError: Expecting property name enclosed in double quotes: "
        f"line 1 column 2 (char 1)); {INDEX_REMEDY}",
    ]


def test_stop_and_kill_refuse_an_unreadable_record_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "jobs"))
    _saved(tmp_path, tmp_path / "jobs")
    index = tmp_path / "jobs" / "digits" / "0101_000000.json"
    index.write_text("")
    expected = f"fedscale-halor: {index}: not a valid job record (ValueError: the file is empty); {INDEX_REMEDY}\n"

    # Execute
    statuses = [main(["stop", "digits"]), main(["kill", "all"])]

    # Assert
    captured = capsys.readouterr()
    assert statuses == [2, 2]
    assert captured.err == expected * 2
    assert "Traceback" not in captured.err


def test_records_are_synced_to_disk_and_leave_no_temporary_files(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    synced: list[int] = []
    original = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(descriptor), original(descriptor))[1])

    # Execute
    record = _saved(tmp_path, tmp_path / "jobs")

    # Assert: each of the two copies, then the folder holding its new name
    assert len(synced) == 4
    assert sorted(path.name for path in Path(record.run_dir).iterdir()) == ["job.json"]
    assert sorted(path.name for path in (tmp_path / "jobs" / "digits").iterdir()) == ["0101_000000.json"]
