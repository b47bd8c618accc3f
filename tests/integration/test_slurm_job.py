"""The Slurm launcher against a real Slurm: a single-node cluster on this machine (``slurm_cluster``), digits jobs
submitted with `fedscale-halor submit --scheduler slurm`, run to the end, stopped, requeued and resumed."""

from __future__ import annotations

import csv
import os
import pickle
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (the fixture, by name)

from fedscale_halor.data.prepare import prepare_dataset
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.records import load_record
from fedscale_halor.launch.slurm import ACTIVE_STATES, SubprocessSlurm

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
# ten rounds of twenty clients: about 90% on digits, in well under a minute on two cores
_SHORT = {"rounds": 10, "eval_interval": 5, "total_clients": 60, "num_participants": 20, "local_steps": 10}
# rounds of six clients that take a tenth of a second each: long enough to stop or requeue in the middle
_LONG = {"eval_interval": 5, "total_clients": 20, "num_participants": 6, "local_steps": 3}
_END_TIMEOUT_S = 300.0

pytestmark = pytest.mark.slow


@pytest.fixture
def slurm_env(slurm_cluster: SlurmCluster, tmp_path: Path,  # noqa: F811
              monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCluster]:
    """The jobs' tasks run `python` from PATH after their setup commands (none here): this environment's."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "jobs"))
    yield slurm_cluster


def _settings(tmp_path: Path, data_dir: Path, **overrides: object) -> dict[str, object]:
    prepare_dataset("digits", data_dir)  # once, before the tasks would race to do it
    return {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0,
            "worker_ips": "127.0.0.1:[2]", "register_timeout": 120, **overrides}


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedscale_halor.cli", *arguments], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def _submit(settings: dict[str, object], timestamp: str, *extra: str) -> str:
    """`fedscale-halor submit --scheduler slurm`; the Slurm job id it printed."""
    submitted = _cli("submit", str(DIGITS_CONF), "--scheduler", "slurm", "--timestamp", timestamp, *extra,
                     *(f"--set={key}={value}" for key, value in settings.items()))
    assert submitted.returncode == 0, submitted.stderr
    first_line = submitted.stdout.splitlines()[0]
    assert first_line.startswith(f"submitted job digits, timestamp {timestamp}, to Slurm as job ")
    return first_line.split(" as job ")[1].split()[0]


def _squeue(job_id: str) -> str:
    shown = subprocess.run(["squeue", "--jobs", job_id, "--states=all",
                            "--format=%.8i %.10P %.10j %.8u %.10T %.8M %.6D %R"], capture_output=True, text=True)
    print(shown.stdout.rstrip())  # what the queue said, in the test's captured output
    return shown.stdout


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.log_tails()}")
        time.sleep(0.25)


def _wait_for_end(job_id: str, cluster: SlurmCluster) -> str:
    slurm = SubprocessSlurm()
    _wait_until(lambda: slurm.state(job_id) not in ACTIVE_STATES, _END_TIMEOUT_S, f"Slurm job {job_id} to end",
                cluster)
    _squeue(job_id)
    accounted = subprocess.run(["sacct", "--completion", "--jobs", job_id,
                                "--format=JobID,JobName,Partition,NNodes,NodeList,State,End"],
                               capture_output=True, text=True)
    print(accounted.stdout.rstrip())  # the cluster keeps no accounting database: its job completion log
    return str(slurm.state(job_id))


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "metrics.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def _processes_of(run_dir: Path) -> list[str]:
    """Command lines of this machine's processes that name the run folder: its srun steps and tasks."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in command_line:
            found.append(f"{entry.name}: {command_line.strip()}")
    return found


def test_a_digits_job_runs_to_the_end_under_slurm_with_the_accuracy_of_the_same_job_in_process(
        slurm_env: SlurmCluster, tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare
    settings = _settings(tmp_path, digits_data_dir, **_SHORT)

    # Execute
    job_id = _submit(settings, "slurm1")
    assert job_id in _squeue(job_id)
    state = _wait_for_end(job_id, slurm_env)

    # Assert: Slurm ran it to the end, and the run folder holds the whole run's logs
    assert state == "COMPLETED", (state, slurm_env.log_tails())
    run_dir = tmp_path / "logs" / "digits" / "slurm1"
    rows = _metrics(run_dir)
    assert [(row["round"], row["completed"]) for row in rows] == [(str(r), "20") for r in range(1, 11)]
    with (run_dir / "testing_perf").open("rb") as handle:
        perf = pickle.load(handle)
    assert sorted(perf["perf"]) == [5, 10] and perf["perf"][10]["test_len"] == 360
    assert float(rows[-1]["test_top1"]) == pytest.approx(perf["perf"][10]["top_1"], abs=1e-6)
    assert perf["perf"][10]["top_1"] >= 0.85  # chance is 0.1; this job reaches about 0.9
    # the same seed gives the same model whatever runs the executors: the accuracy of the job in one process
    reference = run_in_process(load_config(DIGITS_CONF, overrides={**settings, "log_path": str(tmp_path / "ref")}),
                               timestamp="ref", echo=False)
    assert reference.history[-1].test is not None
    assert perf["perf"][10]["top_1"] == pytest.approx(reference.history[-1].test.top1, abs=1e-9)
    for rank in (0, 1):
        assert "shutting down" in (run_dir / f"executor_{rank}.log").read_text()
    assert "job digits finished" in (run_dir / "aggregator.log").read_text()
    record = load_record(run_dir / "job.json")
    assert (record.launcher, record.slurm_job_id) == ("slurm", job_id)
    token = Path(record.token_file).read_text().strip()
    assert stat.S_IMODE(os.stat(record.token_file).st_mode) == 0o600
    assert token not in (run_dir / "slurm_job.sh").read_text()
    shown = _cli("status")
    print(shown.stdout)
    (line,) = [line for line in shown.stdout.splitlines() if "slurm1" in line]
    assert line.split()[3:6] == ["finished", "10", f"{perf['perf'][10]['top_1']:.4f}"]
    assert line.endswith(f"Slurm job {job_id} (COMPLETED)")
    assert _processes_of(run_dir) == []


def test_stop_cancels_a_running_slurm_job_and_leaves_no_process(slurm_env: SlurmCluster, tmp_path: Path,
                                                                digits_data_dir: Path) -> None:
    # Prepare: a job far from its end, past its first round
    job_id = _submit(_settings(tmp_path, digits_data_dir, rounds=100000, **_LONG), "slurm_long")
    run_dir = tmp_path / "logs" / "digits" / "slurm_long"
    _wait_until(lambda: len(_metrics(run_dir)) >= 2, 180, "a first round", slurm_env)
    assert "RUNNING" in _squeue(job_id)
    tasks = [line for line in _processes_of(run_dir) if "fedscale_halor.launch.slurm_task" in line]
    assert sum(" aggregator " in line for line in tasks) >= 1 and sum(" executor " in line for line in tasks) >= 2

    # Execute
    stopped = _cli("stop", "digits", "slurm_long")

    # Assert
    print(stopped.stdout)
    assert stopped.returncode == 0, stopped.stderr
    assert f"Slurm job {job_id} (was RUNNING): cancelled" in stopped.stdout
    queued = subprocess.run(["squeue", "--noheader", "--jobs", job_id], capture_output=True, text=True)
    assert queued.stdout.strip() == ""
    assert "CANCELLED" in _squeue(job_id)
    assert _processes_of(run_dir) == []
    assert load_record(run_dir / "job.json").status == "stopped"


def _interrupt_after_a_checkpoint(settings: dict[str, object], timestamp: str, cluster: SlurmCluster,
                                  interrupt: Callable[[str], None]) -> tuple[str, Path]:
    job_id = _submit(settings, timestamp)
    run_dir = _run_dir_of(settings, timestamp)
    _wait_until(lambda: (run_dir / "checkpoint" / "state.json").is_file(), 180, "a first checkpoint", cluster)
    interrupt(job_id)
    return job_id, run_dir


def _run_dir_of(settings: dict[str, object], timestamp: str) -> Path:
    return Path(str(settings["log_path"])) / "digits" / timestamp


def _assert_resumed_to_the_end(run_dir: Path, rounds: int, aggregator_lines: tuple[str, ...]) -> None:
    rows = _metrics(run_dir)
    assert [int(row["round"]) for row in rows] == list(range(1, rounds + 1))  # each round once, none lost
    assert float(rows[-1]["test_top1"]) >= 0.85
    log = (run_dir / "aggregator.log").read_text()
    for line in aggregator_lines:
        assert line in log, log[-3000:]


def test_a_cancelled_job_submitted_again_with_resume_continues_from_its_checkpoint(
        slurm_env: SlurmCluster, tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: scancel (through stop) once the first checkpoint is written
    settings = _settings(tmp_path, digits_data_dir, rounds=300, **_LONG)
    first, run_dir = _interrupt_after_a_checkpoint(settings, "slurm_resume", slurm_env,
                                                   lambda job_id: _cli("stop", "digits", "slurm_resume"))
    assert _wait_for_end(first, slurm_env) == "CANCELLED"
    assert len(_metrics(run_dir)) < 300

    # Execute
    second = _submit(settings, "slurm_resume", "--resume")
    state = _wait_for_end(second, slurm_env)

    # Assert
    assert second != first and state == "COMPLETED"
    _assert_resumed_to_the_end(run_dir, 300, (f"Slurm job {second} (restart 0)", "resumed from the checkpoint",
                                              "round 300/300"))
    assert load_record(run_dir / "job.json").slurm_job_id == second


def test_a_requeued_job_resumes_from_its_checkpoint(slurm_env: SlurmCluster, tmp_path: Path,
                                                    digits_data_dir: Path) -> None:
    # Prepare: what Slurm does when a node fails under a job: requeue it. Slurm holds a requeued job for two
    # minutes; it may start sooner once the first attempt's processes are gone and its credential's revocation is
    # in the past (a start within the same second is refused as a revoked credential)
    def requeue(job_id: str) -> None:
        subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True)
        run_dir = _run_dir_of(settings, "slurm_requeue")
        _wait_until(lambda: "PENDING" in _squeue(job_id) and slurm_env.node_state() == "idle"
                    and _processes_of(run_dir) == [], 90, "the requeued job's first attempt to end", slurm_env)
        time.sleep(2.0)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, capture_output=True)

    settings = _settings(tmp_path, digits_data_dir, rounds=300, **_LONG)

    # Execute
    job_id, run_dir = _interrupt_after_a_checkpoint(settings, "slurm_requeue", slurm_env, requeue)
    state = _wait_for_end(job_id, slurm_env)

    # Assert
    assert state == "COMPLETED"
    _assert_resumed_to_the_end(run_dir, 300, (f"Slurm job {job_id} (restart 1)", "resumed from the checkpoint",
                                              "round 300/300"))
    assert "DUE TO JOB REQUEUE" in (run_dir / f"slurm-{job_id}.out").read_text()


def test_run_exps_submits_one_slurm_job_per_experiment_and_kill_exps_cancels_them(
        slurm_env: SlurmCluster, tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: two long experiments of one executor each, so that both fit the node's two CPUs at once
    settings = _settings(tmp_path, digits_data_dir, rounds=100000, **_LONG, worker_ips="127.0.0.1:[1]")
    environment = {**os.environ, "SAMPLE_SEEDS": "1 2"}

    # Execute
    swept = subprocess.run(["bash", str(ROOT / "run_exps.sh"), "digits", "--scheduler", "slurm", "--timestamp",
                            "sweep", *(f"--set={key}={value}" for key, value in settings.items())],
                           capture_output=True, text=True, timeout=300, env=environment)
    print(swept.stdout)
    assert swept.returncode == 0, swept.stderr
    rows = [line.split() for line in swept.stdout.splitlines()[2:4]]
    assert [row[:3] for row in rows] == [["1", "digits", "sweep"], ["2", "digits", "sweep_1"]]
    job_ids = [row[3].removeprefix("slurm:") for row in rows]
    run_dirs = [tmp_path / "logs" / "digits" / stamp for stamp in ("sweep", "sweep_1")]
    _wait_until(lambda: all(len(_metrics(run_dir)) >= 1 for run_dir in run_dirs), 180, "both first rounds",
                slurm_env)
    assert all("RUNNING" in _squeue(job_id) for job_id in job_ids)
    killed = subprocess.run(["bash", str(ROOT / "kill_exps.sh"), "digits"], capture_output=True, text=True,
                            timeout=300)

    # Assert
    print(killed.stdout)
    assert killed.returncode == 0, killed.stderr
    for job_id, run_dir in zip(job_ids, run_dirs, strict=True):
        assert f"Slurm job {job_id} (was RUNNING): cancelled" in killed.stdout
        assert "sample_seed: " + ("1" if run_dir.name == "sweep" else "2") in (run_dir / "config.yml").read_text()
        assert "CANCELLED" in _squeue(job_id)
        assert _processes_of(run_dir) == []
    assert not any((tmp_path / "jobs").rglob("*.json"))  # kill_exps.sh forgets what it stopped


def _task_environments(run_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """(role, environment) of each running task of the run: its Python processes, not the srun that started them."""
    tasks = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [part.decode(errors="replace") for part in (entry / "cmdline").read_bytes().split(b"\0")]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if "fedscale_halor.launch.slurm_task" in argv and str(run_dir) in argv and Path(argv[0]).name != "srun":
            variables = dict(item.decode(errors="replace").partition("=")[::2] for item in environ if item)
            tasks.append((argv[argv.index("fedscale_halor.launch.slurm_task") + 1], variables))
    return tasks


def test_each_executor_task_gets_a_gpu_of_its_own_and_the_aggregator_none(slurm_env: SlurmCluster,
                                                                          tmp_path: Path,
                                                                          digits_data_dir: Path) -> None:
    if not slurm_env.gpus:
        pytest.skip(f"the test cluster has no stand-in GPUs: {slurm_env.gpu_problem}")
    # Prepare: this machine's torch sees no GPU, so the executors train on the CPU whatever Slurm binds
    job_id = _submit(_settings(tmp_path, digits_data_dir, rounds=100000, slurm_gpus_per_executor=1, **_LONG),
                     "slurm_gpus")
    run_dir = tmp_path / "logs" / "digits" / "slurm_gpus"
    _wait_until(lambda: len(_metrics(run_dir)) >= 2, 180, "a first round", slurm_env)

    # Execute
    tasks = _task_environments(run_dir)
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    stopped = _cli("stop", "digits", "slurm_gpus")

    # Assert
    assert sorted(role for role, _ in tasks) == ["aggregator", "executor", "executor"]
    assert sorted(env.get("CUDA_VISIBLE_DEVICES", "none") for role, env in tasks if role == "executor") == ["0", "1"]
    assert [env.get("CUDA_VISIBLE_DEVICES", "none") for role, env in tasks if role == "aggregator"] == ["none"]
    assert "TresPerTask=gres:gpu:1" in shown
    assert f"Slurm job {job_id} (was RUNNING): cancelled" in stopped.stdout
    assert _processes_of(run_dir) == []
