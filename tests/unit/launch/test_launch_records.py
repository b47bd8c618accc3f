import json
import re
from pathlib import Path

import pytest

from fedscale_halor.launch.records import (
    JobRecord,
    ProcessRecord,
    RecordError,
    find_records,
    forget_record,
    index_path,
    jobs_dir,
    known_runs,
    load_record,
    save_record,
)


def _record(run_dir: Path, timestamp: str = "1125_101010", job_name: str = "digits") -> JobRecord:
    return JobRecord(job_name, timestamp, str(run_dir), launcher="submit", token_file=str(run_dir / "token"),
                     processes=(ProcessRecord("aggregator", -1, "ps-host", 4242, command_marker=str(run_dir)),
                                ProcessRecord("executor", 0, "worker-a", 4343, ssh_user="alice",
                                              ssh_private_key="/keys/id")))


def test_a_record_round_trips_through_json(tmp_path: Path) -> None:
    record = _record(tmp_path)

    assert JobRecord.from_json(record.to_json()) == record
    assert record.with_status("stopped").status == "stopped"


def test_saving_writes_the_run_folder_and_the_index(tmp_path: Path) -> None:
    run_dir = tmp_path / "logs" / "digits" / "1125_101010"
    run_dir.mkdir(parents=True)
    record = _record(run_dir)

    save_record(record, tmp_path / "jobs")

    assert load_record(run_dir / "job.json") == record
    assert load_record(tmp_path / "jobs" / "digits" / "1125_101010.json") == record
    assert "token" not in {key for process in json.loads(record.to_json())["processes"] for key in process}


def test_the_jobs_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "elsewhere"))

    assert jobs_dir() == tmp_path / "elsewhere"
    assert index_path(_record(tmp_path)) == tmp_path / "elsewhere" / "digits" / "1125_101010.json"


@pytest.mark.parametrize("text", ["{not json", "[]", '{"job_name": "digits"}',
                                  '{"job_name": "d", "timestamp": "t", "run_dir": "r", "launcher": "submit", '
                                  '"processes": [{"role": "wizard", "rank": 0, "host": "h", "pid": 7}]}'])
def test_a_corrupt_record_names_its_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "jobs" / "digits" / "1125_101010.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)

    with pytest.raises(RecordError, match=re.escape(str(path))):
        find_records("digits", directory=tmp_path / "jobs")


def test_an_unknown_job_or_run_lists_the_known_ones(tmp_path: Path) -> None:
    for job_name, stamp in [("digits", "a"), ("digits", "b"), ("cifar", "c")]:
        save_record(_record(tmp_path / "missing", stamp, job_name), tmp_path)

    with pytest.raises(RecordError, match="known jobs: cifar, digits"):
        find_records("femnist", directory=tmp_path)
    with pytest.raises(RecordError, match="known runs: a, b"):
        find_records("digits", "z", directory=tmp_path)
    assert [record.timestamp for _, record in find_records("digits", directory=tmp_path)] == ["a", "b"]
    assert known_runs(tmp_path) == {"cifar": ["c"], "digits": ["a", "b"]}


def test_forgetting_the_last_run_of_a_job_forgets_the_job(tmp_path: Path) -> None:
    record = _record(tmp_path / "missing")
    save_record(record, tmp_path / "jobs")

    forget_record(record, tmp_path / "jobs")

    assert known_runs(tmp_path / "jobs") == {}
    assert not (tmp_path / "jobs" / "digits").exists()


def test_an_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        _record(tmp_path).with_status("paused")
