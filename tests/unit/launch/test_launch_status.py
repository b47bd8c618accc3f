from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.launch.records import JobRecord, ProcessRecord, find_records, known_runs, load_record, save_record
from fedscale_halor.launch.status import format_statuses, run_statuses

ROOT = Path(__file__).resolve().parents[3]
METRICS = ("round,clock_s,wall_time_s,participants,completed,train_loss,learning_rate,test_loss,test_top1,test_top5,"
           "test_samples\n1,1.0,0.1,10,10,0.9,0.05,,,,\n2,2.0,0.1,10,10,0.8,0.05,0.5,0.8125,0.99,360\n"
           "3,3.0,0.1,10,10,0.7,0.05,,,,\n")


def _finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _record(tmp_path: Path, jobs: Path, job: str, timestamp: str, with_metrics: bool = True,
            aggregator_host: str = "localhost", data_set: str = "") -> JobRecord:
    run_dir = tmp_path / "logs" / job / timestamp
    run_dir.mkdir(parents=True)
    if with_metrics:
        (run_dir / "metrics.csv").write_text(METRICS)
    record = JobRecord(job, timestamp, str(run_dir), launcher="submit", data_set=data_set, processes=(
        ProcessRecord("aggregator", -1, aggregator_host, _finished_pid(), command_marker="no such program"),
        ProcessRecord("executor", 0, "localhost", _finished_pid(), command_marker="no such program")))
    save_record(record, jobs)
    return record


def test_status_lists_each_run_with_its_last_round_accuracy_and_hosts(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    _record(tmp_path, jobs, "digits", "1125_101010", aggregator_host="node-a", data_set="digits")
    _record(tmp_path, jobs, "cifar10", "1125_111111", with_metrics=False)  # its logs are on another host

    statuses = run_statuses(jobs)
    text = format_statuses(statuses)

    assert [(s.record.job_name, s.last_round, s.last_top1) for s in statuses] == [
        ("cifar10", None, None), ("digits", 3, 0.8125)]
    assert statuses[1].hosts == ("node-a", "localhost")
    # node-a is out of sight: the run may still be going; every process of cifar10's is here, and gone
    assert [(s.alive, s.state) for s in statuses] == [(False, "ended"), (None, "running")]
    assert "digits        digits          1125_101010       running         3  0.8125  node-a, localhost" in text
    assert "-             cifar10         1125_111111       ended           -       -  localhost" in text
    assert format_statuses([]) == "no recorded runs"


def test_stop_all_stops_every_recorded_run_and_can_run_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    jobs = tmp_path / "jobs"
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(jobs))
    _record(tmp_path, jobs, "digits", "1125_101010")
    _record(tmp_path, jobs, "femnist", "1125_121212")

    first = main(["stop", "--all"])
    again = main(["stop", "--all"])

    assert first == again == 0
    assert [record.status for _, record in find_records("digits", None, jobs)] == ["stopped"]
    assert [record.status for _, record in find_records("femnist", None, jobs)] == ["stopped"]
    assert "executor_0 (pid" in capsys.readouterr().out


def test_kill_exps_stops_a_data_sets_runs_and_all(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    _record(tmp_path, jobs, "digits", "1125_101010", data_set="digits")
    _record(tmp_path, jobs, "digits", "1125_202020", data_set="digits")
    environment = {**os.environ, "FEDSCALE_HALOR_JOBS_DIR": str(jobs)}

    def kill_exps(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "kill_exps.sh"), *arguments], env=environment,
                              capture_output=True, text=True, check=False)

    one = kill_exps("digits", "1125_202020")
    left_after_one = {record.timestamp: record.status for _, record in find_records("digits", None, jobs)}
    everything = kill_exps("all")
    again = kill_exps("all")
    again_one = kill_exps("digits", "1125_202020")

    assert one.returncode == 0, one.stderr
    assert "had ended: digits 1125_202020" in one.stdout and "executor_0 (pid" in one.stdout
    assert left_after_one == {"1125_101010": "running"}
    assert everything.returncode == 0, everything.stderr
    assert "digits 1125_101010" in everything.stdout
    assert known_runs(jobs) == {}
    assert load_record(tmp_path / "logs" / "digits" / "1125_202020" / "job.json").status == "stopped"
    assert (again.returncode, again.stdout.strip()) == (0, "nothing to stop: no recorded experiment (ended or "
                                                           "stopped already)")
    assert again_one.returncode == 0 and "no recorded experiment of digits with timestamp 1125_202020" in \
        again_one.stdout
