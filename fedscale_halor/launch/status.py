"""What the recorded runs are doing: each run's data set, state, hosts, last round and last test accuracy.

A record that cannot be read is listed as ``unreadable``, under the job name and timestamp its index path shows,
with the reason and what to do below the table; the other runs still show."""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.launch.records import JobRecord, RecordError, index_entries
from fedscale_halor.launch.slurm import SlurmCommands, SubprocessSlurm, run_state
from fedscale_halor.launch.stop import access_of, process_running


@dataclass(frozen=True)
class RunStatus:
    record: JobRecord
    last_round: int | None  # None: no round finished yet, or the run folder is not readable from here
    last_top1: float | None
    alive: bool | None = None  # None: its processes are on hosts this machine cannot look at without SSH
    problem: str = ""  # the record is unreadable: why, naming its file (the record holds only its index path's names)
    slurm_state: str | None = None  # a run submitted to Slurm: Slurm's state of its batch job
    slurm_view: str = ""  # that state in the records' words (``slurm.run_state``)

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.record.slurm_job_id:
            return (f"Slurm job {self.record.slurm_job_id} ({self.slurm_state or self.slurm_view})",)
        return tuple(dict.fromkeys(process.host for process in self.record.processes))

    @property
    def state(self) -> str:
        """The record's status, or ``ended`` for a run recorded as running whose processes are all gone; for a
        run recorded as running under Slurm, what Slurm says of its job."""
        if self.problem:
            return "unreadable"
        if self.record.status == "running" and self.slurm_view:
            return self.slurm_view
        return "ended" if self.record.status == "running" and self.alive is False else self.record.status


def run_statuses(jobs_dir: str | Path | None = None, slurm: SlurmCommands | None = None) -> list[RunStatus]:
    """Every recorded run, by job and timestamp."""
    statuses = []
    for path, entry in index_entries(jobs_dir):
        if isinstance(entry, RecordError):
            names = JobRecord(path.parent.name, path.stem, run_dir="", launcher="")
            statuses.append(RunStatus(names, None, None, None, problem=str(entry)))
            continue
        last_round, last_top1 = _progress(Path(entry.run_dir))
        if entry.slurm_job_id:
            slurm = slurm or SubprocessSlurm()
            slurm_state, view = run_state(entry, slurm)
            alive = view in ("running", "pending") if view != "unknown" else None
            statuses.append(RunStatus(entry, last_round, last_top1, alive, slurm_state=slurm_state, slurm_view=view))
            continue
        statuses.append(RunStatus(entry, last_round, last_top1, _alive(entry)))
    return statuses


def _alive(record: JobRecord) -> bool | None:
    local = [process for process in record.processes if access_of(process).local]
    if any(process_running(process) for process in local):
        return True
    # a submitted job ends on its own without telling the index; only local processes show that it did
    return False if local and len(local) == len(record.processes) else None


def _progress(run_dir: Path) -> tuple[int | None, float | None]:
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():  # a run submitted to another host writes its logs there
        return None, None
    last_round, last_top1 = None, None
    try:
        with metrics.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if (row.get("round") or "").isdigit():
                    last_round = int(row["round"])
                with contextlib.suppress(ValueError):  # a line the run was writing when it died
                    last_top1 = float(row["test_top1"]) if row.get("test_top1") else last_top1
    except (OSError, UnicodeDecodeError, csv.Error):  # the logs of one run must not hide the others
        return last_round, last_top1
    return last_round, last_top1


def format_statuses(statuses: list[RunStatus]) -> str:
    if not statuses:
        return "no recorded runs"
    lines = [f"{'dataset':<14}{'job':<16}{'timestamp':<18}{'state':<10}{'round':>7}{'top-1':>8}  hosts"]
    for status in statuses:
        record = status.record
        round_text = "-" if status.last_round is None else str(status.last_round)
        top1_text = "-" if status.last_top1 is None else f"{status.last_top1:.4f}"
        lines.append(f"{record.data_set or '-':<14}{record.job_name:<16}{record.timestamp:<18}{status.state:<10}"
                     f"{round_text:>7}{top1_text:>8}  {', '.join(status.hosts)}")
    problems = [status.problem for status in statuses if status.problem]
    if problems:
        lines += ["", "unreadable job records:", *(f"  {problem}" for problem in problems)]
    return "\n".join(lines)
