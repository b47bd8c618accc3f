"""Submitting to Slurm, and status / stop / kill of Slurm runs, against a hand-written fake of Slurm's commands."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.config.loader import config_from_mapping
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.records import JobRecord, find_records, known_runs, load_record, save_record
from fedscale_halor.launch.resume_check import ConfigMismatchError
from fedscale_halor.launch.slurm import SlurmCommands, SlurmError, cancel_run, run_state, submit_slurm_job
from fedscale_halor.launch.status import format_statuses, run_statuses
from fedscale_halor.launch.stop import kill_experiments, stop_job
from fedscale_halor.launch.sweep import Axis, SweepError, parse_servers, run_sweep


class FakeSlurm(SlurmCommands):
    """Slurm as a dict of job states: submitted jobs run, a cancelled job is CANCELLED after ``cancel_polls``
    further state queries (Slurm's COMPLETING while the tasks end)."""

    def __init__(self, *, fail_submit: str = "", cancel_polls: int = 1, unreachable: bool = False) -> None:
        self.states: dict[str, str] = {}
        self.scripts: list[str] = []
        self.cancelled: list[str] = []
        self._fail_submit = fail_submit
        self._cancel_polls = cancel_polls
        self._unreachable = unreachable
        self._countdown: dict[str, int] = {}

    def submit(self, script: Path) -> str:
        if self._fail_submit:
            raise SlurmError(self._fail_submit)
        self.scripts.append(script.read_text())
        job_id = str(100 + len(self.states))
        self.states[job_id] = "RUNNING"
        return job_id

    def state(self, job_id: str) -> str | None:
        if self._unreachable:
            raise SlurmError("squeue gave no answer within 60 s: is slurmctld running?")
        if job_id in self._countdown:
            self._countdown[job_id] -= 1
            if self._countdown[job_id] < 0:
                del self._countdown[job_id]
                self.states[job_id] = "CANCELLED"
        return self.states.get(job_id)

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)
        self.states[job_id] = "COMPLETING"
        self._countdown[job_id] = self._cancel_polls


def _config(tmp_path: Path, **job: object) -> ExperimentConfig:
    entries = [{"job_name": "digits"}, {"data_set": "digits"}, {"log_path": str(tmp_path / "logs")},
               *({key: value} for key, value in job.items())]
    return config_from_mapping({"launcher": "slurm", "worker_ips": ["127.0.0.1:[2]"], "exp_path": "/code",
                                "job_conf": entries}, None)


def test_submit_writes_config_token_and_script_into_the_run_folder_and_records_the_job_id(tmp_path: Path) -> None:
    # Prepare
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"

    # Execute
    record = submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)

    # Assert
    run_dir = (tmp_path / "logs" / "digits" / "t1").resolve()
    assert (record.launcher, record.slurm_job_id, record.status, record.run_dir) == ("slurm", "100", "running",
                                                                                     str(run_dir))
    assert load_record(run_dir / "job.json") == record and load_record(jobs / "digits" / "t1.json") == record
    assert stat.S_IMODE(os.stat(run_dir / "token").st_mode) == 0o600
    token = (run_dir / "token").read_text().strip()
    assert len(token) == 32 and token not in slurm.scripts[0]
    assert slurm.scripts == [(run_dir / "slurm_job.sh").read_text()]
    assert "#SBATCH --ntasks=2" in slurm.scripts[0] and f"--run-dir {run_dir}" in slurm.scripts[0]
    assert f"log_path: {run_dir.parent.parent}" in (run_dir / "config.yml").read_text()


def test_a_refused_submission_is_recorded_as_failed_and_names_the_job(tmp_path: Path) -> None:
    slurm = FakeSlurm(fail_submit="sbatch failed with exit status 1: invalid partition specified: gpu")

    with pytest.raises(SlurmError, match=r"^job digits not submitted: sbatch failed .*invalid partition"):
        submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=tmp_path / "jobs", slurm=slurm)

    assert load_record(tmp_path / "logs" / "digits" / "t1" / "job.json").status == "failed"


def test_a_run_folder_with_a_blank_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(SlurmError, match="has a blank in its path"):
        submit_slurm_job(_config(tmp_path), timestamp="my run", jobs_dir=tmp_path / "jobs", slurm=FakeSlurm())

    assert not (tmp_path / "logs" / "digits" / "my run").exists()


def test_resume_submits_the_same_run_again_with_a_new_token_and_job_id(tmp_path: Path) -> None:
    # Prepare: a run that was cancelled after a checkpoint
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"
    first = submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)
    slurm.states["100"] = "CANCELLED"
    run_dir = Path(first.run_dir)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "aggregator_address").write_text('{"host": "n1", "port": 1, "job_id": "100", "restart": "0"}')
    old_token = (run_dir / "token").read_text()

    # Execute
    second = submit_slurm_job(_config(tmp_path, rounds=80), timestamp="t1", jobs_dir=jobs, slurm=slurm,
                              resume=True)

    # Assert
    assert (second.timestamp, second.slurm_job_id) == ("t1", "101")
    assert (run_dir / "token").read_text() != old_token
    assert not (run_dir / "aggregator_address").exists()  # executors must not dial the last job's aggregator
    assert "rounds: 80" in (run_dir / "config.yml").read_text()
    assert [record.slurm_job_id for _, record in find_records("digits", directory=jobs)] == ["101"]


def test_resume_refuses_a_change_of_what_is_trained_a_run_without_checkpoint_and_a_running_job(
        tmp_path: Path) -> None:
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"
    submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)

    with pytest.raises(SlurmError, match="cannot resume: no checkpoint to resume from"):
        submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm, resume=True)
    (tmp_path / "logs" / "digits" / "t1" / "checkpoint").mkdir()
    with pytest.raises(SlurmError, match=r"job digits t1 is still RUNNING as Slurm job 100; stop it first"):
        submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm, resume=True)
    slurm.states["100"] = "CANCELLED"
    with pytest.raises(ConfigMismatchError, match=r"sample_seed \(233 -> 9\)"):
        submit_slurm_job(_config(tmp_path, sample_seed=9), timestamp="t1", jobs_dir=jobs, slurm=slurm, resume=True)
    assert len(slurm.scripts) == 1


@pytest.mark.parametrize(("state", "shown"), [("PENDING", "pending"), ("RUNNING", "running"),
                                              ("COMPLETING", "running"), ("COMPLETED", "finished"),
                                              ("CANCELLED", "stopped"), ("TIMEOUT", "failed"),
                                              ("NODE_FAIL", "failed"), (None, "ended")])
def test_run_state_reads_slurms_states_in_the_records_words(state: str | None, shown: str) -> None:
    slurm = FakeSlurm()
    if state is not None:
        slurm.states["7"] = state

    assert run_state(JobRecord("j", "t", "/r", "slurm", slurm_job_id="7"), slurm) == (state, shown)


def test_status_shows_the_slurm_job_and_its_state_in_place_of_hosts(tmp_path: Path) -> None:
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"
    record = submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)
    (Path(record.run_dir) / "metrics.csv").write_text("round,test_top1\n1,\n2,0.5\n")

    (status,) = run_statuses(jobs, slurm=slurm)
    slurm.states["100"] = "COMPLETED"
    (ended,) = run_statuses(jobs, slurm=slurm)

    assert (status.state, status.alive, status.hosts) == ("running", True, ("Slurm job 100 (RUNNING)",))
    assert (ended.state, ended.alive) == ("finished", False)
    assert format_statuses([ended]).splitlines()[1] == (
        "digits        digits          t1                finished        2  0.5000  Slurm job 100 (COMPLETED)")
    (unknown,) = run_statuses(jobs, slurm=FakeSlurm(unreachable=True))
    assert (unknown.state, unknown.alive) == ("unknown", None)


def test_stop_cancels_the_job_waits_for_it_to_end_and_marks_the_record(tmp_path: Path) -> None:
    slurm, jobs = FakeSlurm(cancel_polls=3), tmp_path / "jobs"
    submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)

    (run,) = stop_job("digits", "t1", jobs_dir=jobs, slurm=slurm)

    assert slurm.cancelled == ["100"] and slurm.states["100"] == "CANCELLED"
    assert run.complete and run.slurm_job is not None
    assert run.slurm_job.describe() == "Slurm job 100 (was RUNNING): cancelled"
    assert load_record(tmp_path / "logs" / "digits" / "t1" / "job.json").status == "stopped"
    (again,) = stop_job("digits", "t1", jobs_dir=jobs, slurm=slurm)
    assert again.slurm_job is not None and again.slurm_job.outcome == "gone" and slurm.cancelled == ["100"]


def test_a_job_that_does_not_end_after_scancel_or_a_silent_slurm_keeps_the_run_recorded(tmp_path: Path) -> None:
    slurm, jobs = FakeSlurm(cancel_polls=10**6), tmp_path / "jobs"
    record = submit_slurm_job(_config(tmp_path), timestamp="t1", jobs_dir=jobs, slurm=slurm)

    stuck = cancel_run(record, slurm, wait_s=0.05, poll_s=0.01)
    (silent,) = kill_experiments("digits", jobs_dir=jobs, slurm=FakeSlurm(unreachable=True))

    assert (stuck.outcome, stuck.detail) == ("unreachable", "still COMPLETING 0.05 s after scancel")
    assert not silent.complete and "is slurmctld running?" in str(silent.slurm_job)
    assert known_runs(jobs) == {"digits": ["t1"]}


def test_kill_cancels_every_slurm_run_of_the_data_set_and_drops_their_records(tmp_path: Path) -> None:
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"
    for stamp in ("t1", "t2"):
        submit_slurm_job(_config(tmp_path), timestamp=stamp, jobs_dir=jobs, slurm=slurm)
    save_record(JobRecord("other", "t3", str(tmp_path / "o"), "slurm", data_set="cifar10", slurm_job_id="55"), jobs)

    runs = kill_experiments("digits", jobs_dir=jobs, slurm=slurm)

    assert sorted(run.record.timestamp for run in runs) == ["t1", "t2"]
    assert sorted(slurm.cancelled) == ["100", "101"]
    assert known_runs(jobs) == {"other": ["t3"]}


def test_a_sweep_under_slurm_submits_one_batch_job_per_experiment_and_kill_cancels_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    slurm, jobs = FakeSlurm(), tmp_path / "jobs"
    digits_conf = Path(__file__).resolve().parents[3] / "benchmark" / "configs" / "digits" / "conf.yml"

    # Execute
    status = run_sweep(digits_conf, [Axis("rounds", ("20", "60"))], [], {"log_path": str(tmp_path / "logs")},
                       timestamp="1125_101010", jobs_dir=jobs, scheduler="slurm", slurm=slurm)
    killed = kill_experiments("digits", jobs_dir=jobs, slurm=slurm)

    # Assert
    out = capsys.readouterr().out
    assert status == 0 and len(slurm.scripts) == 2
    assert [line.split()[:4] for line in out.splitlines()[2:4]] == [["1", "digits", "1125_101010", "slurm:100"],
                                                                   ["2", "digits", "1125_101010_1", "slurm:101"]]
    recorded = [load_record(Path(run.record.run_dir) / "job.json") for run in killed]
    assert sorted(record.slurm_job_id for record in recorded) == ["100", "101"]
    assert {record.status for record in recorded} == {"stopped"}
    assert "rounds: 60" in (tmp_path / "logs" / "digits" / "1125_101010_1" / "config.yml").read_text()
    assert sorted(slurm.cancelled) == ["100", "101"] and known_runs(jobs) == {}


def test_a_sweep_under_slurm_refuses_servers(tmp_path: Path) -> None:
    digits_conf = Path(__file__).resolve().parents[3] / "benchmark" / "configs" / "digits" / "conf.yml"

    with pytest.raises(SweepError, match="under launcher slurm Slurm places every experiment: leave IPS empty"):
        run_sweep(digits_conf, [], parse_servers(["node-a"], []), {}, scheduler="slurm", slurm=FakeSlurm())


def test_submit_resume_is_for_slurm_runs_and_needs_a_timestamp(tmp_path: Path) -> None:
    digits_conf = Path(__file__).resolve().parents[3] / "benchmark" / "configs" / "digits" / "conf.yml"

    with pytest.raises(SystemExit, match="submit --resume continues Slurm runs"):
        main(["submit", str(digits_conf), "--timestamp", "t1", "--resume", f"--set=log_path={tmp_path}"])
    with pytest.raises(SystemExit, match="--resume needs the --timestamp"):
        main(["submit", str(digits_conf), "--scheduler", "slurm", "--resume"])
