"""Helpers of the tests that run `fedscale-halor start` as a user does (the aggregator forks its executors) and kill
its processes: the command, the forked children, waiting for a round, the seeded choice of when to kill."""

from __future__ import annotations

import contextlib
import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
# a failure names its seed; FEDSCALE_HALOR_CHAOS_SEED=<seed> replays it, or tries other kill points
SEED_VARIABLE = "FEDSCALE_HALOR_CHAOS_SEED"


def chaos_rng(default_seed: int) -> tuple[int, random.Random]:
    """The seed (the environment's, else ``default_seed``) and a generator seeded with it."""
    seed = int(os.environ.get(SEED_VARIABLE) or default_seed)
    return seed, random.Random(seed)


def start_command(timestamp: str, settings: Mapping[str, object], *, resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(DIGITS_CONF), "--timestamp", timestamp]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return [*command, "--resume"] if resume else command


def start_job(timestamp: str, settings: Mapping[str, object], *, resume: bool = False,
              env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(start_command(timestamp, settings, resume=resume), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})


def forked_children(pid: int) -> list[int]:
    """The executors forked by the `start` of ``pid`` (they carry its command line)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    return [child for child in children if _is_a_job_process(child)]


def wait_for_round(run_dir: Path, round_number: int, job: subprocess.Popen[str], timeout_s: float = 300) -> None:
    """Return once metrics.csv has the line of ``round_number``; fail if the job ends or the time runs out first."""
    metrics = run_dir / "metrics.csv"
    deadline = time.monotonic() + timeout_s
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > round_number):
        if job.poll() is not None:
            raise AssertionError(f"the job ended (status {job.returncode}) before round {round_number}")
        if time.monotonic() > deadline:
            job.kill()  # its forked executors follow once they find it gone
            raise AssertionError(f"round {round_number} was not logged within {timeout_s} s")
        time.sleep(0.01)


def wait_into_round(run_dir: Path, after_round: int, share: float, job: subprocess.Popen[str]) -> float:
    """Wait for the line of ``after_round``, then ``share`` of that round's wall time, so that what happens next
    lands in the following round whatever the machine's speed; returns the seconds waited after the line."""
    wait_for_round(run_dir, after_round, job)
    with (run_dir / "metrics.csv").open() as lines:
        delay_s = share * float(list(csv.DictReader(lines))[after_round - 1]["wall_time_s"])
    time.sleep(delay_s)
    return delay_s


def end_orphans(pids: list[int], grace_s: float) -> list[int]:
    """Wait ``grace_s`` for executors whose aggregator was killed to exit on their own, then kill -9 the rest;
    returns those that had to be killed."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_is_a_job_process(pid) for pid in pids):
        time.sleep(0.05)
    killed = [pid for pid in pids if _is_a_job_process(pid)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while any(_is_a_job_process(pid) for pid in killed):
        assert time.monotonic() < deadline, f"executors {killed} outlived kill -9"
        time.sleep(0.05)
    return killed


def _is_a_job_process(pid: int) -> bool:
    """Whether ``pid`` is a running process of a job (not a zombie, whose parent has not reaped it, and not a
    later process that reuses the pid)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        return state not in ("Z", "X") and b"fedscale_halor.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
