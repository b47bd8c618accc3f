"""`submit` through Slurm (``launcher: slurm`` or ``--scheduler slurm``): one batch job per run, and what `status`,
`stop` and `kill_exps.sh` ask Slurm about it.

``submit_slurm_job`` prepares the run folder as the SSH launcher does (resolved config, a fresh token readable by
its owner only), writes the batch script next to them (``slurm_script``), submits it and records the Slurm job id
in the run's job record. Slurm is reached only through ``SlurmCommands``; ``SubprocessSlurm`` runs the real
``sbatch``, ``squeue``, ``sacct`` and ``scancel``, and unit tests hand in a fake.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
import secrets
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.hosts import executor_slots
from fedscale_halor.launch.records import RECORD_FILE_NAME, JobRecord, load_record, save_record
from fedscale_halor.launch.resume_check import write_run_config
from fedscale_halor.launch.rundir import create_run_dir, open_run_dir
from fedscale_halor.launch.slurm_script import (
    ADDRESS_FILE_NAME,
    CONFIG_FILE_NAME,
    TOKEN_FILE_NAME,
    batch_plan,
    batch_script,
)

_log = logging.getLogger("fedscale_halor.launch")

SCRIPT_FILE_NAME = "slurm_job.sh"
# Slurm's job states in which some process of the job may still run (or start)
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                           "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                           "RESV_DEL_HOLD"})
# how Slurm's end states read in `fedscale-halor status` (job records' own words)
_END_STATES = {"COMPLETED": "finished", "CANCELLED": "stopped", "PREEMPTED": "stopped", "DEADLINE": "failed",
               "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed",
               "BOOT_FAIL": "failed"}
# Slurm signals a cancelled job's tasks with SIGTERM and kills them KillWait seconds later (30 by default)
CANCEL_WAIT_S = 90.0
_COMMAND_TIMEOUT_S = 60.0


class SlurmError(LaunchError):
    """A Slurm command failed or is missing; the message names the command and what it said."""


class SlurmCommands(abc.ABC):
    """The three things the launcher asks of Slurm."""

    @abc.abstractmethod
    def submit(self, script: Path) -> str:
        """Submit the batch script; the job id."""

    @abc.abstractmethod
    def state(self, job_id: str) -> str | None:
        """The job's state in Slurm's words (RUNNING, COMPLETED, ...); None when Slurm no longer knows it."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> None:
        """Cancel the job (its tasks get SIGTERM, then SIGKILL); a job that has ended already is no error."""


class SubprocessSlurm(SlurmCommands):
    """Slurm's own commands, from PATH, with the cluster that SLURM_CONF (or Slurm's default config) names."""

    def submit(self, script: Path) -> str:
        completed = _run(["sbatch", "--parsable", str(script)])
        if completed.returncode != 0:
            raise SlurmError(f"sbatch {script} failed with exit status {completed.returncode}: "
                             f"{_said(completed)}")
        job_id = completed.stdout.strip().split(";")[0]  # "<id>;<cluster>" on a federation
        if not job_id.isdigit():
            raise SlurmError(f"sbatch {script} did not print a job id: {completed.stdout.strip()!r}")
        return job_id

    def state(self, job_id: str) -> str | None:
        # squeue knows pending and running jobs, and ended ones for MinJobAge (300 s by default)
        queued = _run(["squeue", "--noheader", "--jobs", job_id, "--states=all", "--format=%T"])
        if queued.returncode == 0 and queued.stdout.strip():
            return queued.stdout.split()[0]
        # then the accounting database, or the job completion log on a cluster without one
        for argv in (["sacct", "--jobs", job_id, "--allocations", "--noheader", "--parsable2", "--format=State"],
                     ["sacct", "--completion", "--jobs", job_id, "--noheader", "--parsable2",
                      "--format=JobID,State"]):
            completed = _run(argv)
            if completed.returncode != 0:
                continue
            states = [fields[-1].split()[0] for fields in (line.strip().split("|")
                                                           for line in completed.stdout.splitlines())
                      if fields[-1].strip() and (len(fields) == 1 or fields[0] == job_id)]
            if states:
                # "CANCELLED by 0" -> CANCELLED; a requeued job is listed once per attempt, the last one last
                return states[-1]
        return None

    def cancel(self, job_id: str) -> None:
        completed = _run(["scancel", job_id])
        if completed.returncode != 0 and "invalid job id" not in _said(completed).lower():
            raise SlurmError(f"scancel {job_id} failed with exit status {completed.returncode}: {_said(completed)}")


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise SlurmError(f"no {argv[0]!r} on PATH: launcher slurm runs where Slurm's commands are installed "
                         "(a cluster's login node)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{shlex.join(argv)} gave no answer within {_COMMAND_TIMEOUT_S:g} s: is slurmctld "
                         "running?") from None


def _said(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stderr.strip() or completed.stdout.strip() or "no message"


def submit_slurm_job(cfg: ExperimentConfig, *, timestamp: str | None = None, jobs_dir: str | Path | None = None,
                     run_dir: Path | None = None, resume: bool = False, force_config: bool = False,
                     slurm: SlurmCommands | None = None) -> JobRecord:
    """Submit the job as one Slurm batch job and return its record without waiting. ``run_dir``: an empty run
    folder reserved beforehand (sweeps). ``resume``: submit again the run of ``timestamp``, which continues from
    its checkpoint; as with `start --resume`, a config that changes what is trained is refused unless
    ``force_config``."""
    slurm = slurm or SubprocessSlurm()
    if run_dir is not None and timestamp is not None:
        raise SlurmError("give a timestamp or a reserved run folder, not both")
    try:
        executor_slots(cfg.deployment.worker_ips)
    except ValueError as error:
        raise SlurmError(str(error)) from None
    if cfg.deployment.slurm.slurm_gpus_per_executor and not cfg.job.use_cuda:
        _log.warning("job %s: slurm_gpus_per_executor is %d but use_cuda is false: the executors hold GPUs and "
                     "train on the CPU", cfg.job.job_name, cfg.deployment.slurm.slurm_gpus_per_executor)
    folder = run_dir or Path(cfg.job.log_path).expanduser().resolve() / cfg.job.job_name / (timestamp or "")
    if any(character.isspace() for character in str(folder)):
        raise SlurmError(f"job {cfg.job.job_name}: the run folder {folder} has a blank in its path, which an "
                         "'#SBATCH --output' line cannot hold; choose a log_path, job_name and timestamp without "
                         "blanks")
    if resume:
        try:
            run_dir = open_run_dir(cfg.job.log_path, cfg.job.job_name, timestamp, resume=True)
        except (ValueError, FileNotFoundError) as error:
            raise SlurmError(f"job {cfg.job.job_name}: cannot resume: {error}") from None
        _refuse_a_second_job(run_dir, slurm)
    elif run_dir is None:
        run_dir = create_run_dir(cfg.job.log_path, cfg.job.job_name, timestamp)
    run_dir = run_dir.resolve()
    # the nodes find the run folder at the same place, whatever the working directory of their tasks
    cfg = dataclasses.replace(cfg, job=dataclasses.replace(cfg.job, log_path=str(run_dir.parent.parent)))
    if resume:
        write_run_config(cfg, run_dir, resume=True, force_config=force_config)
    else:
        dump_config(cfg, run_dir / CONFIG_FILE_NAME)
    token_file = _write_private(run_dir / TOKEN_FILE_NAME, secrets.token_hex(16))
    (run_dir / ADDRESS_FILE_NAME).unlink(missing_ok=True)  # the last job's, on a resume
    exp_path = cfg.deployment.exp_path or str(repository_root())
    script = run_dir / SCRIPT_FILE_NAME
    script.write_text(batch_script(batch_plan(cfg, run_dir, exp_path)), encoding="utf-8")
    record = JobRecord(cfg.job.job_name, run_dir.name, str(run_dir), launcher="slurm", token_file=str(token_file),
                       data_set=cfg.job.data_set)
    try:
        job_id = slurm.submit(script)
    except SlurmError as error:
        save_record(record.with_status("failed"), jobs_dir)
        raise SlurmError(f"job {cfg.job.job_name} not submitted: {error}") from None
    record = dataclasses.replace(record, slurm_job_id=job_id)
    save_record(record, jobs_dir)
    return record


def _refuse_a_second_job(run_dir: Path, slurm: SlurmCommands) -> None:
    """Two jobs writing one run folder would interleave their rounds: the run's last job must have ended."""
    if not (run_dir / RECORD_FILE_NAME).is_file():
        return
    record = load_record(run_dir / RECORD_FILE_NAME)
    state = slurm.state(record.slurm_job_id) if record.slurm_job_id else None
    if state in ACTIVE_STATES:
        raise SlurmError(f"job {record.job_name} {record.timestamp} is still {state} as Slurm job "
                         f"{record.slurm_job_id}; stop it first (fedscale-halor stop {record.job_name} "
                         f"{record.timestamp}) or let Slurm requeue it")


def run_state(record: JobRecord, slurm: SlurmCommands) -> tuple[str | None, str]:
    """(Slurm's state of the run's job, the state `status` shows): ``running`` or ``pending`` while active, the
    record's words for an ended job, ``ended`` when Slurm has forgotten the job; ``unknown`` when Slurm cannot be
    asked."""
    try:
        state = slurm.state(record.slurm_job_id)
    except SlurmError:
        return None, "unknown"
    if state is None:
        return None, "ended"
    if state in ACTIVE_STATES:
        return state, "pending" if state in ("PENDING", "REQUEUED", "REQUEUE_HOLD") else "running"
    return state, _END_STATES.get(state, "ended")


@dataclasses.dataclass(frozen=True)
class CancelledJob:
    """What `stop` did to a run's Slurm job: ``cancelled``, ``gone`` (it had ended) or ``unreachable`` (Slurm
    could not be asked, or the job did not end within the wait); ``state``: Slurm's state before the stop."""

    job_id: str
    outcome: str
    state: str | None
    detail: str = ""

    def describe(self) -> str:
        before = f" (was {self.state})" if self.state else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"Slurm job {self.job_id}{before}: {self.outcome}{detail}"


def cancel_run(record: JobRecord, slurm: SlurmCommands, *, wait_s: float = CANCEL_WAIT_S,
               poll_s: float = 0.5) -> CancelledJob:
    """Cancel the run's job and wait until Slurm says none of its processes is left."""
    job_id = record.slurm_job_id
    try:
        state = slurm.state(job_id)
        if state not in ACTIVE_STATES:
            return CancelledJob(job_id, "gone", state)
        slurm.cancel(job_id)
        deadline = time.monotonic() + wait_s
        while (now := slurm.state(job_id)) in ACTIVE_STATES:
            if time.monotonic() > deadline:
                return CancelledJob(job_id, "unreachable", state, f"still {now} {wait_s:g} s after scancel")
            time.sleep(poll_s)
    except SlurmError as error:
        return CancelledJob(job_id, "unreachable", None, str(error))
    return CancelledJob(job_id, "cancelled", state)


def _write_private(path: Path, text: str) -> Path:
    # created or replaced with the owner's permissions only, never readable by others in between
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(temporary, path)
    return path
