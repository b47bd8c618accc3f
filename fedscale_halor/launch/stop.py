"""Stopping a recorded run: SIGTERM to each process group, a grace period, then SIGKILL to what is left.

Processes on this machine are signalled directly; those on other hosts by a script run over SSH. A process that
is already gone is not an error, and a pid that now belongs to another program (the run ended long ago and the
number was reused) is left alone. A run submitted to Slurm is cancelled by its recorded job id (``slurm``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.launch.records import (
    JobRecord,
    ProcessRecord,
    find_records,
    forget_record,
    indexed_records,
    save_record,
)
from fedscale_halor.launch.remote import GroupToStop, HostAccess, RemoteCommandError, run_script, stop_script
from fedscale_halor.launch.slurm import CancelledJob, SlurmCommands, SubprocessSlurm, cancel_run

DEFAULT_GRACE_S = 5.0
OUTCOMES = ("terminated", "killed", "gone", "foreign", "unreachable")


@dataclass(frozen=True)
class StoppedProcess:
    process: ProcessRecord
    outcome: str  # one of OUTCOMES
    detail: str = ""


@dataclass(frozen=True)
class StoppedRun:
    record: JobRecord
    processes: tuple[StoppedProcess, ...]
    slurm_job: CancelledJob | None = None  # a run submitted to Slurm: what became of its batch job

    @property
    def complete(self) -> bool:
        """Every process is known to be gone (no host was unreachable, Slurm answered)."""
        return (all(stopped.outcome != "unreachable" for stopped in self.processes)
                and (self.slurm_job is None or self.slurm_job.outcome != "unreachable"))


def stop_run(record: JobRecord, *, grace_s: float = DEFAULT_GRACE_S,
             slurm: SlurmCommands | None = None) -> StoppedRun:
    """Stop the run's recorded processes and, when Slurm runs it, cancel its batch job."""
    processes = tuple(stop_processes(record.processes, grace_s=grace_s))
    slurm_job = cancel_run(record, slurm or SubprocessSlurm()) if record.slurm_job_id else None
    return StoppedRun(record, processes, slurm_job)


def stop_job(job_name: str, timestamp: str | None = None, *, jobs_dir: str | Path | None = None,
             grace_s: float = DEFAULT_GRACE_S, slurm: SlurmCommands | None = None) -> list[StoppedRun]:
    """Stop one run of a job (``timestamp``) or every recorded run of it, and mark their records stopped."""
    runs: list[StoppedRun] = []
    for _, record in find_records(job_name, timestamp, jobs_dir):
        stopped = stop_run(record, grace_s=grace_s, slurm=slurm)
        if stopped.complete:
            save_record(record.with_status("stopped"), jobs_dir)
        runs.append(stopped)
    return runs


def kill_experiments(name: str | None, timestamp: str | None = None, *, jobs_dir: str | Path | None = None,
                     grace_s: float = DEFAULT_GRACE_S, slurm: SlurmCommands | None = None) -> list[StoppedRun]:
    """What `kill_exps.sh` does: stop the indexed runs whose data set or job name is ``name`` (every run when None;
    only ``timestamp`` when given), then drop them from the index, their run folders' job.json saying ``stopped``.
    Finding nothing is not an error: the runs may have ended or been stopped already. A run with an unreachable
    host stays indexed, so that the same command can be run again."""
    runs: list[StoppedRun] = []
    for _, record in indexed_records(jobs_dir):
        if name is not None and name not in (record.data_set, record.job_name):
            continue
        if timestamp is not None and record.timestamp != timestamp:
            continue
        stopped = stop_run(record, grace_s=grace_s, slurm=slurm)
        if stopped.complete:
            save_record(record.with_status("stopped"), jobs_dir)
            forget_record(record, jobs_dir)
        runs.append(stopped)
    return runs


def stop_processes(processes: Sequence[ProcessRecord], *, grace_s: float = DEFAULT_GRACE_S) -> list[StoppedProcess]:
    """Stop the processes, host by host in parallel, each host reached as at launch; the result is in the order of
    ``processes``."""
    by_host: dict[HostAccess, list[ProcessRecord]] = {}
    for process in processes:
        by_host.setdefault(access_of(process), []).append(process)
    with ThreadPoolExecutor(max_workers=max(1, len(by_host))) as pool:
        futures = [pool.submit(_stop_local if access.local else _stop_remote, access, group, grace_s)
                   for access, group in by_host.items()]
        outcomes = {stopped.process: stopped for future in futures for stopped in future.result()}
    return [outcomes[process] for process in processes]


def access_of(process: ProcessRecord) -> HostAccess:
    return HostAccess(process.host, process.ssh_user, process.ssh_private_key, process.ssh_port)


def _stop_remote(access: HostAccess, processes: Sequence[ProcessRecord], grace_s: float) -> list[StoppedProcess]:
    targets = [GroupToStop(p.pid, p.process_group, p.command_marker) for p in processes]
    try:
        result = run_script(access, stop_script(targets, grace_s), timeout_s=grace_s + 120.0)
    except RemoteCommandError as error:
        return [StoppedProcess(process, "unreachable", str(error)) for process in processes]
    if result.returncode != 0:
        detail = f"{access.host}: exit status {result.returncode}: {result.stderr.strip()}"
        return [StoppedProcess(process, "unreachable", detail) for process in processes]
    reported: dict[int, str] = {}
    for line in result.stdout.splitlines():
        pid, _, outcome = line.strip().partition(" ")
        if pid.isdigit() and outcome in OUTCOMES:
            reported[int(pid)] = outcome
    return [StoppedProcess(process, reported.get(process.pid, "unreachable"),
                           "" if process.pid in reported else f"{access.host}: no report for pid {process.pid}")
            for process in processes]


def _stop_local(_access: HostAccess, processes: Sequence[ProcessRecord], grace_s: float) -> list[StoppedProcess]:
    outcomes: dict[ProcessRecord, str] = {}
    signalled: list[ProcessRecord] = []
    for process in processes:
        if not process_running(process):
            outcomes[process] = "gone"
        elif not _is_ours(process):
            outcomes[process] = "foreign"
        else:
            _signal(process, signal.SIGTERM)
            signalled.append(process)
    deadline = time.monotonic() + grace_s
    while any(process_running(process) for process in signalled) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in signalled:
        if process_running(process):
            _signal(process, signal.SIGKILL)
            outcomes[process] = "killed"
        else:
            outcomes[process] = "terminated"
    return [StoppedProcess(process, outcomes[process]) for process in processes]


def _signal(process: ProcessRecord, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended between the check and the signal
        if process.process_group:
            os.killpg(process.pid, signal_number)
        else:
            os.kill(process.pid, signal_number)


def process_running(process: ProcessRecord) -> bool:
    """The recorded process (its whole group, when it leads one) is still there; for processes on this machine."""
    return process_group_alive(process.pid) if process.process_group else process_alive(process.pid)



def _is_ours(process: ProcessRecord) -> bool:
    if not process.command_marker or not process_alive(process.pid):
        # a group outliving its leader keeps the leader's number from being reused: it is still the run's group
        return True
    command_line = process_command_line(process.pid)
    return command_line is None or process.command_marker in command_line


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    state = _proc_stat(pid)
    if state is not None:
        return state[0] != "Z"
    if Path("/proc/self/stat").exists():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_group_alive(pgid: int) -> bool:
    """Some process of the group exists and is not a zombie."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            state = _proc_stat(int(entry.name))
            if state is not None and state[1] == pgid and state[0] != "Z":
                return True
    return False


def process_command_line(pid: int) -> str | None:
    """The process's arguments joined by spaces, as `ps -o args=` shows them; None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        pass
    try:
        completed = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True,
                                   timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) from /proc/<pid>/stat; None when there is no such entry."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the command name may contain spaces and parentheses
    return fields[0], int(fields[2])
