"""`submit` and `stop` with real processes: a fake `ssh` first on PATH records its arguments and runs the remote
command on this machine, so host names such as node-a stand for other machines without an SSH server."""

import csv
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ports import free_port_run

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.data.prepare import prepare_dataset
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.records import JobRecord, known_runs, load_record
from fedscale_halor.launch.stop import process_alive, process_command_line, stop_job
from fedscale_halor.launch.submit import SubmitError, submit_job

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"

pytestmark = pytest.mark.slow

_FAKE_SSH = """#!{python}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
index = 0
while index < len(argv) and argv[index].startswith("-"):
    index += 2 if argv[index] in ("-o", "-i", "-l", "-p") else 1
host, command = argv[index], argv[index + 1:]
if host in os.environ.get("FAKE_SSH_UNREACHABLE", "").split(","):
    sys.stderr.write(f"ssh: connect to host {{host}} port 22: Connection refused\\n")
    sys.exit(255)
os.environ["FAKE_SSH_HOST"] = host  # lets a setup command show that the host's shell expands it
os.execvp("bash", ["bash", "-c", " ".join(command)])
"""

# stands in for core/aggregator.py and core/executor.py: notes how it was started, then waits to be stopped
_FAKE_ENTRY = """import os, pathlib, signal, sys, time
if os.environ.get("IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
args = sys.argv[1:]
token = pathlib.Path(args[args.index("--token-file") + 1]).read_text().strip()
with open(os.environ["ENTRY_LOG"], "a") as log:
    log.write(f"started {{sys.argv[0]}} on {{os.environ['FAKE_SSH_HOST']}} token-length {{len(token)}}\\n")
time.sleep(60)
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Puts the fake `ssh` first on PATH (then this environment's python); returns the file of recorded argvs."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    ssh = folder / "ssh"
    ssh.write_text(_FAKE_SSH.format(python=sys.executable))
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    argv_log = tmp_path / "ssh-argv.jsonl"
    monkeypatch.setenv("PATH", f"{folder}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(argv_log))
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "jobs"))
    yield argv_log
    for job_name in known_runs(tmp_path / "jobs"):  # whatever a failed test left running
        stop_job(job_name, jobs_dir=tmp_path / "jobs", grace_s=1.0)


def _recorded_argvs(argv_log: Path) -> list[list[str]]:
    return [json.loads(line) for line in argv_log.read_text().splitlines()] if argv_log.exists() else []


def _fake_exp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exp_path = tmp_path / "exp"
    (exp_path / "core").mkdir(parents=True)
    for name in ("aggregator.py", "executor.py"):
        (exp_path / "core" / name).write_text(_FAKE_ENTRY.format())
    monkeypatch.setenv("ENTRY_LOG", str(tmp_path / "entries.log"))
    return exp_path


def _fake_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> ExperimentConfig:
    key = tmp_path / "id_job"
    key.write_text("a key")
    settings = {"log_path": str(tmp_path / "logs"), "exp_path": str(_fake_exp_path(tmp_path, monkeypatch)),
                "ps_ip": "ps-host", "ps_port": free_port_run(), "worker_ips": ["node-a:[2]", "node-b:[1]"],
                "ssh_user": "alice", "ssh_private_key": str(key),
                "setup_commands": ['echo "setup on $FAKE_SSH_HOST" >> "$ENTRY_LOG"'], **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _entry_lines(tmp_path: Path, count: int) -> list[str]:
    log = tmp_path / "entries.log"
    _wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= count, 30, "the processes")
    return log.read_text().splitlines()


def test_submit_runs_setup_first_on_each_host_over_ssh_and_keeps_the_token_off_command_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ssh: Path) -> None:
    record = submit_job(_fake_job(tmp_path, monkeypatch), timestamp="fake")

    lines = _entry_lines(tmp_path, 7)
    token = Path(record.token_file).read_text().strip()
    base = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-i", str(tmp_path / "id_job"),
            "-l", "alice"]
    # each host twice: the check that it answers, before anything starts, then the start
    assert sorted(_recorded_argvs(fake_ssh)) == [[*base, host, "bash", "-s"] for host in ("node-a", "node-b",
                                                                                          "ps-host") for _ in "12"]
    for host, entry, count in [("ps-host", "aggregator", 1), ("node-a", "executor", 2), ("node-b", "executor", 1)]:
        host_lines = [line for line in lines if line.endswith(host) or f" on {host} " in line]
        assert host_lines == [f"setup on {host}"] + [f"started core/{entry}.py on {host} token-length 32"] * count
    assert [(p.role, p.rank, p.host) for p in record.processes] == [
        ("aggregator", -1, "ps-host"), ("executor", 0, "node-a"), ("executor", 1, "node-a"), ("executor", 2, "node-b")]
    assert load_record(Path(record.run_dir) / "job.json") == record
    assert stat.S_IMODE(os.stat(record.token_file).st_mode) == 0o600
    assert token not in fake_ssh.read_text()
    for process in record.processes:
        command_line = process_command_line(process.pid) or ""
        assert record.run_dir in command_line and token not in command_line
        assert os.getpgid(process.pid) == process.pid  # its own group: stop takes the whole tree


def test_stop_terminates_every_process_and_kills_one_that_ignores_sigterm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ssh: Path) -> None:
    record = submit_job(_fake_job(tmp_path, monkeypatch, setup_commands=[
        '[ "$FAKE_SSH_HOST" != node-b ] || export IGNORE_SIGTERM=1']), timestamp="long")
    _entry_lines(tmp_path, 4)

    (run,) = stop_job(record.job_name, "long", grace_s=1.0)

    outcomes = {(p.process.host, p.process.rank): p.outcome for p in run.processes}
    assert outcomes == {("ps-host", -1): "terminated", ("node-a", 0): "terminated", ("node-a", 1): "terminated",
                        ("node-b", 2): "killed"}
    assert not any(process_alive(process.pid) for process in record.processes)
    assert load_record(Path(record.run_dir) / "job.json").status == "stopped"
    (again,) = stop_job(record.job_name)
    assert {p.outcome for p in again.processes} == {"gone"}


def test_a_failing_setup_command_aborts_the_submit_and_stops_what_had_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ssh: Path) -> None:
    setup = ['[ "$FAKE_SSH_HOST" != node-b ] || { echo "no venv on this host" >&2; false; }']
    cfg = _fake_job(tmp_path, monkeypatch, setup_commands=setup)

    with pytest.raises(SubmitError, match="node-b: starting the executors 2 failed") as raised:
        submit_job(cfg, timestamp="broken")

    assert "no venv on this host" in str(raised.value) and "setup command failed" in str(raised.value)
    record = load_record(tmp_path / "logs" / "digits" / "broken" / "job.json")
    assert record.status == "failed"
    assert [(p.role, p.host) for p in record.processes] == [("aggregator", "ps-host"), ("executor", "node-a"),
                                                            ("executor", "node-a")]
    assert not any(process_alive(process.pid) for process in record.processes)


def test_a_missing_entry_point_is_named_and_nothing_is_left_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    fake_ssh: Path) -> None:
    cfg = _fake_job(tmp_path, monkeypatch, executor_entry="core/missing.py", worker_ips=["node-a:[2]"])

    with pytest.raises(SubmitError, match=r"node-a: starting the executors 0, 1 failed.*no core/missing.py in"):
        submit_job(cfg, timestamp="missing")

    record = load_record(tmp_path / "logs" / "digits" / "missing" / "job.json")
    assert [p.role for p in record.processes] == ["aggregator"]
    assert not process_alive(record.processes[0].pid)


def test_an_unreachable_host_is_named_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             fake_ssh: Path) -> None:
    monkeypatch.setenv("FAKE_SSH_UNREACHABLE", "node-b")

    with pytest.raises(SubmitError, match=r"^job digits not submitted, nothing was started: node-b \(worker_ips\) "
                                          r"cannot be reached: ssh: connect to host node-b port 22: Connection "
                                          r"refused \(ssh exit status 255\); check the host name"):
        submit_job(_fake_job(tmp_path, monkeypatch), timestamp="down")

    assert not (tmp_path / "entries.log").exists()
    assert not (tmp_path / "logs").exists() and known_runs(tmp_path / "jobs") == {}


def _digits(tmp_path: Path, data_dir: Path, **overrides: object) -> ExperimentConfig:
    prepare_dataset("digits", data_dir)  # once, before several processes would race to do it
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_ip": "127.0.0.1",
                "ps_port": free_port_run(), "worker_ips": ["node-a:[1]", "node-b:[1]"], "rounds": 2,
                "eval_interval": 2, "total_clients": 20, "num_participants": 6, "local_steps": 3,
                "register_timeout": 60, **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def test_a_submitted_digits_job_runs_to_completion(tmp_path: Path, digits_data_dir: Path, fake_ssh: Path) -> None:
    record = submit_job(_digits(tmp_path, digits_data_dir), timestamp="done")

    _wait_until(lambda: not any(process_alive(p.pid) for p in record.processes), 120, "the job to end")
    run_dir = Path(record.run_dir)
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [(row["round"], row["completed"]) for row in rows] == [("1", "6"), ("2", "6")]
    assert (run_dir / "testing_perf").is_file()
    assert "job digits finished" in (run_dir / "aggregator.log").read_text()
    for rank in (0, 1):
        assert "shutting down (job finished)" in (run_dir / f"executor_{rank}.log").read_text()


def test_stop_ends_a_long_submitted_digits_job(tmp_path: Path, digits_data_dir: Path, fake_ssh: Path) -> None:
    record = submit_job(_digits(tmp_path, digits_data_dir, rounds=10000), timestamp="long")
    metrics = Path(record.run_dir) / "metrics.csv"
    _wait_until(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, 120, "a first round")

    (run,) = stop_job("digits", grace_s=5.0)

    assert {stopped.outcome for stopped in run.processes} == {"terminated"}
    assert not any(process_alive(process.pid) for process in record.processes)
    assert "stopped by a signal" in (Path(record.run_dir) / "aggregator.log").read_text()
    assert JobRecord.from_json((tmp_path / "jobs" / "digits" / "long.json").read_text()).status == "stopped"


def test_stop_ends_a_job_started_in_another_terminal(tmp_path: Path, digits_data_dir: Path, fake_ssh: Path) -> None:
    cfg = _digits(tmp_path, digits_data_dir)
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(DIGITS_CONF), "--timestamp", "started",
               *(f"--set={key}={value}" for key, value in [
                   ("log_path", tmp_path / "logs"), ("data_dir", digits_data_dir), ("worker_ips", "127.0.0.1:[2]"),
                   ("rounds", 10000), ("total_clients", 20), ("num_participants", 6), ("ps_port", 0)])]
    start = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    index = tmp_path / "jobs" / cfg.job.job_name / "started.json"
    metrics = tmp_path / "logs" / "digits" / "started" / "metrics.csv"
    _wait_until(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, 120, "a first round")
    record = load_record(index)

    (run,) = stop_job("digits", "started", grace_s=5.0)

    assert start.wait(timeout=30) != 0
    assert (run.processes[0].process.role, run.processes[0].process.pid) == ("aggregator", start.pid)
    assert not any(process_alive(process.pid) for process in record.processes)
    assert load_record(tmp_path / "logs" / "digits" / "started" / "job.json").status == "stopped"
