"""Job records: which processes a launched run consists of, so that `fedscale-halor stop` can find and end them.

A record is JSON, written twice on the launching machine: ``job.json`` in the run folder (it stays with the logs)
and ``<jobs dir>/<job_name>/<timestamp>.json``, the index `stop` reads from a job name alone. The jobs dir is
``~/.fedscale_halor/jobs`` unless FEDSCALE_HALOR_JOBS_DIR names another. Records hold the token file's path,
never the token. A run submitted to Slurm is recorded by its Slurm job id, without processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fedscale_halor.launch.errors import LaunchError

JOBS_DIR_VARIABLE = "FEDSCALE_HALOR_JOBS_DIR"
RECORD_FILE_NAME = "job.json"

ROLES = ("aggregator", "executor")
STATUSES = ("running", "finished", "failed", "stopped")


class RecordError(LaunchError):
    """A job record that cannot be read, or a job or run that has no record. ``path``: the unreadable file."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class ProcessRecord:
    """One process of a run. ``process_group``: the process leads its own process group (it was started in a new
    session), so stopping it signals the whole group. ``command_marker``: text its command line contains, checked
    before signalling so that a pid reused by another program after the run ended is left alone."""

    role: str
    rank: int  # the executor's rank; -1 for the aggregator
    host: str
    pid: int
    process_group: bool = True
    command_marker: str = ""
    ssh_user: str = ""
    ssh_private_key: str = ""
    ssh_port: int = 0  # 0: ssh's default; otherwise the host was reached over SSH on it, even if it is this machine

    def describe(self) -> str:
        name = "aggregator" if self.role == "aggregator" else f"executor_{self.rank}"
        return f"{name} (pid {self.pid} on {self.host})"


@dataclass(frozen=True)
class JobRecord:
    job_name: str
    timestamp: str
    run_dir: str
    launcher: str  # "start", "submit" or "slurm"
    status: str = "running"
    token_file: str = ""  # empty when the token never touched a disk (start passes it in the environment)
    processes: tuple[ProcessRecord, ...] = field(default_factory=tuple)
    data_set: str = ""  # the job's data set, so that `kill_exps.sh <dataset>` finds runs whatever their job name
    # launcher "slurm": the batch job that runs the processes (Slurm knows their pids and hosts, the record does not)
    slurm_job_id: str = ""

    def with_process(self, process: ProcessRecord) -> JobRecord:
        return replace(self, processes=(*self.processes, process))

    def with_status(self, status: str) -> JobRecord:
        if status not in STATUSES:
            raise ValueError(f"job record status must be one of {', '.join(STATUSES)}, got {status!r}")
        return replace(self, status=status)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<job record>") -> JobRecord:
        try:
            if not text.strip():
                raise ValueError("the file is empty")
            data = json.loads(text)
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            processes = tuple(_process_from(entry) for entry in data["processes"])
            record = cls(**{**data, "processes": processes})
            if record.status not in STATUSES:
                raise ValueError(f"unknown status {record.status!r}")
        except (ValueError, TypeError, KeyError) as error:
            raise RecordError(f"{source}: not a valid job record ({type(error).__name__}: {error})"
                              f"{_remedy(source)}", Path(source)) from None
        return record


def _process_from(entry: object) -> ProcessRecord:
    if not isinstance(entry, Mapping):
        raise TypeError(f"a process entry must be a JSON object, got {type(entry).__name__}")
    process = ProcessRecord(**entry)
    if process.role not in ROLES:
        raise ValueError(f"unknown process role {process.role!r}")
    if not isinstance(process.pid, int) or process.pid <= 1:
        raise ValueError(f"invalid pid {process.pid!r}")
    return process


def jobs_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    configured = os.environ.get(JOBS_DIR_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".fedscale_halor" / "jobs"


def index_path(record: JobRecord, directory: str | Path | None = None) -> Path:
    return jobs_dir(directory) / record.job_name / f"{record.timestamp}.json"


def save_record(record: JobRecord, directory: str | Path | None = None) -> None:
    """Write the record into its run folder (when that folder is on this machine) and into the index."""
    run_dir = Path(record.run_dir)
    if run_dir.is_dir():
        _write_atomically(run_dir / RECORD_FILE_NAME, record.to_json())
    _write_atomically(index_path(record, directory), record.to_json())


def load_record(path: str | Path) -> JobRecord:
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(f"{source}: cannot read the job record ({error}){_remedy(str(source))}", source) from None
    return JobRecord.from_json(text, str(source))


def _remedy(source: str) -> str:
    """What to do about an unreadable record: the other copy of it holds the same, unless the run was indexed
    after its folder's copy was last written."""
    if source.startswith("<"):
        return ""
    path = Path(source)
    if path.name == RECORD_FILE_NAME:
        index_copy = jobs_dir() / path.parent.parent.name / f"{path.parent.name}.json"
        return f"; the jobs index keeps the same record: copy {index_copy} over it"
    return (f"; copy the run's own copy (<log_path>/{path.parent.name}/{path.stem}/{RECORD_FILE_NAME}) over it, "
            "or delete it once the run's processes are known to be gone")


def forget_record(record: JobRecord, directory: str | Path | None = None) -> None:
    """Drop a run from the index (its processes are known to be gone); the run folder keeps its job.json."""
    path = index_path(record, directory)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other runs of the job are still indexed
        path.parent.rmdir()


def known_runs(directory: str | Path | None = None) -> dict[str, list[str]]:
    """Job name -> timestamps of its indexed runs, sorted."""
    root = jobs_dir(directory)
    if not root.is_dir():
        return {}
    runs = {job.name: sorted(path.stem for path in job.glob("*.json")) for job in sorted(root.iterdir())
            if job.is_dir()}
    return {name: stamps for name, stamps in runs.items() if stamps}


def find_records(job_name: str, timestamp: str | None = None,
                 directory: str | Path | None = None) -> list[tuple[Path, JobRecord]]:
    """The indexed runs of ``job_name`` (only ``timestamp`` when given); an unknown one lists the known ones."""
    runs = known_runs(directory)
    if job_name not in runs:
        known = ", ".join(sorted(runs)) or "none"
        raise RecordError(f"no recorded job named {job_name!r} in {jobs_dir(directory)}; known jobs: {known}")
    stamps = runs[job_name]
    if timestamp is not None:
        if timestamp not in stamps:
            raise RecordError(f"job {job_name!r} has no recorded run {timestamp!r}; "
                              f"known runs: {', '.join(stamps)}")
        stamps = [timestamp]
    paths = [jobs_dir(directory) / job_name / f"{stamp}.json" for stamp in stamps]
    return [(path, load_record(path)) for path in paths]


def indexed_records(directory: str | Path | None = None) -> list[tuple[Path, JobRecord]]:
    """Every indexed run of every job, by job name and timestamp. A run that leaves the index while it is read (a
    `start` that just ended) is left out; any other unreadable record fails with its path."""
    entries: list[tuple[Path, JobRecord]] = []
    for path, entry in index_entries(directory):
        if isinstance(entry, RecordError):
            raise entry
        entries.append((path, entry))
    return entries


def index_entries(directory: str | Path | None = None) -> list[tuple[Path, JobRecord | RecordError]]:
    """Like ``indexed_records``, but an unreadable record is its error, in its place, and the others still come."""
    entries: list[tuple[Path, JobRecord | RecordError]] = []
    for job_name, stamps in known_runs(directory).items():
        for stamp in stamps:
            path = jobs_dir(directory) / job_name / f"{stamp}.json"
            if not path.exists():
                continue
            try:
                entries.append((path, load_record(path)))
            except RecordError as error:
                if path.exists():
                    entries.append((path, error))
    return entries


def _write_atomically(path: Path, text: str) -> None:
    # a reader (stop, in another terminal) never sees half a record, nor does anyone after a crash or power loss
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself
    finally:
        os.close(folder)
