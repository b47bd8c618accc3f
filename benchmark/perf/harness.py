"""What the performance benchmarks share: jobs run as real processes, per-round times, and tree memory.

Memory is sampled from outside: a thread polls the whole process tree of a command (the process and all its
descendants) and keeps the peak of two sums, RSS (pages each process has in memory, shared library pages counted
once per process) and PSS (each shared page divided among the processes that map it, so the sum is what the tree
really costs the machine).
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
GIB = 2**30


@dataclass(frozen=True)
class TreeMemory:
    peak_rss_bytes: int
    peak_pss_bytes: int


@dataclass(frozen=True)
class Measured:
    """One measured run: wall seconds of each round, peak tree memory, and whatever the run reported."""

    round_seconds: tuple[float, ...]
    memory: TreeMemory
    report: Mapping[str, object]

    def median_round_s(self, first: int = 2) -> float:
        """Median wall time of rounds ``first``.. (1-based): round 1 pays for warm-up and is left out."""
        return statistics.median(self.round_seconds[first - 1:])


class TreeMemorySampler:
    """Polls a process tree's memory every ``interval_s`` seconds until stopped."""

    def __init__(self, root_pid: int, interval_s: float = 0.2) -> None:
        self._root_pid = root_pid
        self._interval_s = interval_s
        self._peak_rss = 0
        self._peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> TreeMemory:
        return TreeMemory(self._peak_rss, self._peak_pss)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            with_pss = tick % _PSS_EVERY == 0
            rss, pss = _tree_memory(self._root_pid, with_pss)
            self._peak_rss = max(self._peak_rss, rss)
            if with_pss:
                self._peak_pss = max(self._peak_pss, pss)
            tick += 1
            self._stop.wait(self._interval_s)


# Reading PSS parses /proc/<pid>/smaps_rollup (milliseconds per process). Every 0.2 s, and PSS every second, is
# often enough to see the peak of a run whose working set is steady across rounds, and rarely enough not to
# perturb it: polling every 50 ms woke up often enough to preempt a 2-thread torch executor mid-step, and each
# preemption stalls its other thread at the next barrier.
_PSS_EVERY = 5


def _tree_memory(root_pid: int, with_pss: bool) -> tuple[int, int]:
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for process in processes:
        try:
            if with_pss:
                full = process.memory_full_info()
                rss += full.rss
                pss += getattr(full, "pss", full.rss)
            else:
                rss += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss, pss


def run_measured(command: Sequence[str], *, env: Mapping[str, str] | None = None,
                 log_file: Path | None = None) -> TreeMemory:
    """Run ``command`` to completion while sampling its tree's memory; a failure raises with the command's output."""
    output = log_file.open("wb") if log_file is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
        with TreeMemorySampler(process.pid) as sampler:
            returncode = process.wait()
    finally:
        if log_file is not None:
            output.close()  # type: ignore[union-attr]
    if returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:] if log_file is not None else ""
        raise RuntimeError(f"{' '.join(command)} exited with {returncode}\n{tail}")
    return sampler.peak


def start_job(config: Path, overrides: Mapping[str, object], timestamp: str, *, in_process: bool = False,
              log_file: Path) -> TreeMemory:
    """``fedscale-halor start`` as a child process, as a user would run it."""
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(config), "--timestamp", timestamp]
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    if in_process:
        command.append("--in-process")
    return run_measured(command, log_file=log_file)


def round_seconds_from_metrics(run_dir: Path) -> tuple[float, ...]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return tuple(float(row["wall_time_s"]) for row in csv.DictReader(handle))


def write_synthetic_spec(data_dir: Path, **spec: object) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "synthetic.json").write_text(json.dumps(spec))
    return data_dir


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "n/a"


def gib(size_bytes: int) -> str:
    return f"{size_bytes / GIB:.2f} GiB"


def wait_for_quiet_machine(load_below: float = 0.5, timeout_s: float = 30.0) -> None:
    """Timings on 2 cores are only comparable when nothing else runs: wait a little for leftovers to finish."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and psutil.cpu_percent(interval=1.0) > load_below * 100:
        pass
