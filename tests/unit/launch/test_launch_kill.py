"""kill_experiments (kill_exps.sh): which runs it picks, that it stops their process groups and drops their records,
and that it is safe to repeat."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedscale_halor.launch.records import JobRecord, ProcessRecord, known_runs, load_record, save_record
from fedscale_halor.launch.stop import access_of, kill_experiments, process_group_alive


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes in sessions of their own, as submit starts them; whatever a test leaves is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _running(tmp_path: Path, jobs: Path, sleepers: list[subprocess.Popen[bytes]], job: str, timestamp: str,
             data_set: str) -> JobRecord:
    run_dir = tmp_path / "logs" / job / timestamp
    run_dir.mkdir(parents=True)
    # the run folder on its command line: the marker stop checks before it signals
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(run_dir)],
                               start_new_session=True)
    sleepers.append(process)
    record = JobRecord(job, timestamp, str(run_dir), launcher="submit", data_set=data_set, processes=(
        ProcessRecord("aggregator", -1, "127.0.0.1", process.pid, command_marker=str(run_dir)),))
    save_record(record, jobs)
    return record


def test_kill_by_data_set_and_timestamp_stops_only_that_run_and_drops_its_record(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    # Prepare: two digits runs under different job names, one cifar10 run
    jobs = tmp_path / "jobs"
    first = _running(tmp_path, jobs, sleepers, "digits", "1125_101010", "digits")
    second = _running(tmp_path, jobs, sleepers, "digits_traces", "1125_101010", "digits")
    other = _running(tmp_path, jobs, sleepers, "cifar10", "1125_101010", "cifar10")

    # Execute
    one = kill_experiments("digits", "1125_101010", jobs_dir=jobs, grace_s=2.0)
    sleepers[0].wait(timeout=10)
    rest = kill_experiments("digits", jobs_dir=jobs, grace_s=2.0)
    again = kill_experiments("digits", jobs_dir=jobs, grace_s=2.0)

    # Assert: the timestamp exists for both digits jobs, so both went; cifar10 is untouched
    assert sorted((run.record.job_name, run.processes[0].outcome) for run in one) == [
        ("digits", "terminated"), ("digits_traces", "terminated")]
    assert rest == again == []
    assert not process_group_alive(first.processes[0].pid) and not process_group_alive(second.processes[0].pid)
    assert process_group_alive(other.processes[0].pid)
    assert known_runs(jobs) == {"cifar10": ["1125_101010"]}
    assert load_record(Path(first.run_dir) / "job.json").status == "stopped"


def test_kill_all_stops_everything_and_a_job_name_matches_too(tmp_path: Path,
                                                              sleepers: list[subprocess.Popen[bytes]]) -> None:
    # Prepare
    jobs = tmp_path / "jobs"
    _running(tmp_path, jobs, sleepers, "digits_traces", "1125_101010", "digits")
    _running(tmp_path, jobs, sleepers, "cifar10", "1125_202020", "cifar10")

    # Execute
    by_job = kill_experiments("digits_traces", jobs_dir=jobs, grace_s=2.0)
    everything = kill_experiments(None, jobs_dir=jobs, grace_s=2.0)

    # Assert
    assert [(run.record.job_name, run.processes[0].outcome) for run in by_job] == [("digits_traces", "terminated")]
    assert [(run.record.job_name, run.processes[0].outcome) for run in everything] == [("cifar10", "terminated")]
    assert known_runs(jobs) == {}
    assert not any(process_group_alive(process.pid) for process in sleepers)


def test_an_unreachable_host_keeps_the_record_for_another_try(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: an `ssh` that cannot connect, and a run on node-a reached on port 2222
    folder = tmp_path / "bin"
    folder.mkdir()
    ssh = folder / "ssh"
    ssh.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'ssh-args'}\necho 'ssh: connect: refused' >&2\nexit 255\n")
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    jobs = tmp_path / "jobs"
    save_record(JobRecord("digits", "1125_101010", str(tmp_path / "run"), launcher="submit", data_set="digits",
                          processes=(ProcessRecord("aggregator", -1, "node-a", 4242, ssh_port=2222),)), jobs)

    # Execute
    (run,) = kill_experiments(None, jobs_dir=jobs, grace_s=1.0)

    # Assert
    assert not run.complete and run.processes[0].outcome == "unreachable"
    assert known_runs(jobs) == {"digits": ["1125_101010"]}
    assert "-p 2222 node-a bash -s" in (tmp_path / "ssh-args").read_text()


def test_an_ssh_port_sends_even_this_machine_over_ssh() -> None:
    # Execute / Assert
    assert access_of(ProcessRecord("aggregator", -1, "127.0.0.1", 4242)).local
    assert not access_of(ProcessRecord("aggregator", -1, "127.0.0.1", 4242, ssh_port=2222)).local
