"""What the recorded runs are doing: each run's data set, state, hosts, last round and last test accuracy."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.launch.records import JobRecord, indexed_records
from fedscale_halor.launch.stop import access_of, process_running


@dataclass(frozen=True)
class RunStatus:
    record: JobRecord
    last_round: int | None  # None: no round finished yet, or the run folder is not readable from here
    last_top1: float | None
    alive: bool | None = None  # None: its processes are on hosts this machine cannot look at without SSH

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(process.host for process in self.record.processes))

    @property
    def state(self) -> str:
        """The record's status, or ``ended`` for a run recorded as running whose processes are all gone."""
        return "ended" if self.record.status == "running" and self.alive is False else self.record.status


def run_statuses(jobs_dir: str | Path | None = None) -> list[RunStatus]:
    """Every recorded run, by job and timestamp."""
    statuses = []
    for _, record in indexed_records(jobs_dir):
        last_round, last_top1 = _progress(Path(record.run_dir))
        statuses.append(RunStatus(record, last_round, last_top1, _alive(record)))
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
    with metrics.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("round", "").isdigit():
                last_round = int(row["round"])
            if row.get("test_top1"):
                last_top1 = float(row["test_top1"])
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
    return "\n".join(lines)
