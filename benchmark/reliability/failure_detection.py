"""How fast a job notices a dead executor, and what straggler balancing does to simulated rounds.

    .venv/bin/python benchmark/reliability/failure_detection.py [--repeats N] [--quick]

Three measurements, each on real processes started with the project's interpreter, printed as markdown tables:

1. a FORKED executor (one that `fedscale-halor start` forked) killed with SIGKILL during a round, with an executor
   timeout of 600 s: seconds from the kill to the aggregator.log line that declares it dead;
2. a REMOTE executor (started as its own process, as `submit` does on a worker host, against an aggregator run
   alone with `fedscale_halor.launch.aggregator_main`) killed with SIGKILL, and as a control frozen with SIGSTOP
   (its TCP connection stays open), with executor timeouts of 5 and 10 s: the same delay;
3. the digits job on device traces in one process (`start --in-process`), straggler balancing off and on, under
   first-K completion and under a fixed deadline: mean simulated round time, completed and shortened clients per
   round, final top-1 accuracy.

Delays are taken on this process's monotonic clock: the log file is polled every few milliseconds and each line is
stamped when it is read, because the log's own timestamps are wall-clock times with millisecond resolution (they
are printed alongside as a cross-check). Everything is written into a temporary folder (data, traces, logs).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
CLI = REPO_ROOT / ".venv" / "bin" / "fedscale-halor"
DIGITS_CONF = REPO_ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
TRACES_CONF = REPO_ROOT / "benchmark" / "configs" / "digits" / "traces.yml"
TOKEN_VARIABLE = "FEDSCALE_HALOR_TOKEN"  # what executor_main and aggregator_main read the job token from

# the line board.py logs for every death, whatever its cause: "executor executor_1 exited (pid 123, signal 9):
# declared dead; ..." (from the exit watch) or "executor executor_1 silent for 6 s: declared dead; ..." (timeout)
DEAD_LINE = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*executor (?P<executor>executor_\d+) "
                       r"(?P<reason>.+?): declared dead")
POLL_S = 0.002  # the tail's polling period: the resolution of every delay measured here
# small enough rounds to run many per second, large enough (30 clients of 20 steps) that a kill lands in one
JOB_SETTINGS = {"total_clients": 60, "num_participants": 30, "local_steps": 20, "rounds": 100000,
                "eval_interval": 100000, "worker_ips": "127.0.0.1:[2]"}


@dataclass(frozen=True)
class Detection:
    """One kill: seconds to the death line, by arrival on the monotonic clock and by the line's own timestamp."""

    arrival_s: float | None
    logged_s: float | None
    reason: str


class LogTail:
    """Lines appended to a file, each stamped with time.monotonic() when it is read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = ""

    def read(self) -> list[tuple[float, str]]:
        if not self._path.exists():
            return []
        with self._path.open("r", encoding="utf-8", errors="replace") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset = handle.tell()
        now = time.monotonic()
        # a line written in two pieces must not be matched half-way
        *complete, self._partial = (self._partial + chunk).split("\n")
        return [(now, line) for line in complete]

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float) -> tuple[float, str] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for stamp, line in self.read():
                if predicate(line):
                    return stamp, line
            time.sleep(POLL_S)
        return None


def wait_for_rounds(metrics_csv: Path, rounds: int, timeout_s: float, alive: Callable[[], bool]) -> bool:
    """Until ``rounds`` rows are in metrics.csv (so that executors are registered and training)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        if metrics_csv.exists() and len(metrics_csv.read_text().splitlines()) > rounds:
            return True
        time.sleep(0.02)
    return False


def kill_and_time(victim: int, sig: int, tail: LogTail, expect: Callable[[str], bool], timeout_s: float) -> Detection:
    """Send ``sig`` to ``victim`` and wait for the death line ``expect`` accepts."""
    tail.read()  # what was logged before the kill is not an answer
    killed_wall, killed = time.time(), time.monotonic()
    os.kill(victim, sig)
    found = tail.wait_for(lambda line: DEAD_LINE.match(line) is not None and expect(line), timeout_s)
    if found is None:
        return Detection(None, None, "no death line")
    stamp, line = found
    match = DEAD_LINE.match(line)
    assert match is not None
    # asctime is local wall time truncated to milliseconds
    logged = datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S,%f").timestamp() - killed_wall
    return Detection(stamp - killed, logged, match["reason"])


def end_processes(pids: Sequence[int], grace_s: float = 20.0) -> None:
    """SIGTERM the processes this script started (by pid), SIGKILL what is left after ``grace_s``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            os.kill(pid, signal.SIGCONT)  # a frozen process would not act on SIGTERM
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    return children


def _env() -> dict[str, str]:
    # conf.yml's exp_path and the traces config's paths expand $FEDSCALE_HALOR_HOME
    return {**os.environ, "FEDSCALE_HALOR_HOME": str(REPO_ROOT)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sets(settings: dict[str, object]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


# 1. forked executors -------------------------------------------------------------------------------------------
def forked_detection(scratch: Path, index: int, rng: random.Random) -> Detection:
    """One `start` job with two forked executors; one is killed during a round and the job then stopped."""
    timestamp = f"forked_{index}"
    settings = {**JOB_SETTINGS, "log_path": scratch / "logs", "data_dir": scratch / "data", "ps_port": 0,
                "executor_timeout": 600}
    run_dir = scratch / "logs" / "digits" / timestamp
    with (scratch / f"{timestamp}.out").open("wb") as out:
        start = subprocess.Popen([str(CLI), "start", str(DIGITS_CONF), "--timestamp", timestamp, *_sets(settings)],
                                 cwd=REPO_ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    victims: list[int] = []
    try:
        if not wait_for_rounds(run_dir / "metrics.csv", 2, 180, lambda: start.poll() is None):
            return Detection(None, None, f"the job did not reach round 2 (see {scratch / (timestamp + '.out')})")
        # forked executors carry the command line of `start` itself
        parent_cmdline = Path(f"/proc/{start.pid}/cmdline").read_bytes()
        victims = [pid for pid in _children(start.pid) if Path(f"/proc/{pid}/cmdline").read_bytes() == parent_cmdline]
        if len(victims) != 2:
            return Detection(None, None, f"found {len(victims)} forked executors, not 2")
        time.sleep(rng.uniform(0.0, 0.5))  # land at a random point of a round
        victim = victims[rng.randrange(2)]
        return kill_and_time(victim, signal.SIGKILL, LogTail(run_dir / "aggregator.log"),
                             lambda line: f"(pid {victim}, signal 9)" in line, timeout_s=60)
    finally:
        end_processes([start.pid, *victims])


# 2. remote executors -------------------------------------------------------------------------------------------
def remote_detection(scratch: Path, name: str, timeout_s: float, sig: int, rng: random.Random) -> Detection:
    """The aggregator role alone and two executors started by hand, as `submit` starts them on worker hosts."""
    # imported here: only this part needs the package itself (to write a resolved config as `submit` does)
    from fedscale_halor.config.serialize import dump_config
    from fedscale_halor.launch.jobfile import load_config

    port = _free_port()
    # remote executors always stream their payloads; shared memory would only be used on the aggregator's host
    overrides = {**JOB_SETTINGS, "log_path": str(scratch / "logs"), "data_dir": str(scratch / "data"),
                 "ps_port": port, "executor_timeout": timeout_s, "shared_memory": False}
    config = dump_config(load_config(DIGITS_CONF, overrides=overrides, environ=_env()), scratch / f"{name}.yml")
    env = {**_env(), TOKEN_VARIABLE: f"benchmark-{name}"}
    run_dir = scratch / "logs" / "digits" / name
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with (scratch / f"{name}.aggregator.out").open("wb") as out:
            processes.append(subprocess.Popen(
                [str(PYTHON), "-m", "fedscale_halor.launch.aggregator_main", "--config", str(config),
                 "--timestamp", name], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        tail = LogTail(run_dir / "aggregator.log")
        if tail.wait_for(lambda line: "aggregator serving gRPC on port" in line, 120) is None:
            return Detection(None, None, "the aggregator did not start serving")
        for rank in range(2):
            with (scratch / f"{name}.executor_{rank}.out").open("wb") as out:
                processes.append(subprocess.Popen(
                    [str(PYTHON), "-m", "fedscale_halor.launch.executor_main", "--config", str(config), "--rank",
                     str(rank), "--address", f"127.0.0.1:{port}"], cwd=REPO_ROOT, env=env, stdout=out,
                    stderr=subprocess.STDOUT))
        if not wait_for_rounds(run_dir / "metrics.csv", 2, 180, lambda: processes[0].poll() is None):
            return Detection(None, None, "the job did not reach round 2")
        time.sleep(rng.uniform(0.0, 0.5))
        return kill_and_time(processes[2].pid, sig, tail, lambda line: "executor_1 " in line,
                             timeout_s=timeout_s + 30)
    finally:
        end_processes([process.pid for process in processes])
        for process in processes:
            process.wait()


# 3. straggler balancing ----------------------------------------------------------------------------------------
# first-K is traces.yml as it is (13 selected, the first 10 finishers complete); with a fixed deadline of 40 s and
# no overcommitment, most of the selected miss it unless balancing shortens their local steps
REGIMES: dict[str, dict[str, object]] = {
    "first-K (exp_type 2, overcommitment 1.3)": {},
    "deadline 40 s (exp_type 1, overcommitment 1.0)": {"exp_type": 1, "deadline": 40, "overcommitment": 1.0},
}


@dataclass(frozen=True)
class BalancingRun:
    mean_round_s: float
    completed_per_round: float
    shortened_per_round: float
    final_top1: float


def balancing_run(scratch: Path, regime: str, balancing: bool, seed: int, rounds: int) -> BalancingRun:
    timestamp = f"balancing_{list(REGIMES).index(regime)}_{int(balancing)}_{seed}"
    traces = scratch / "traces"
    settings = {**REGIMES[regime], "log_path": scratch / "logs", "data_dir": scratch / "data", "rounds": rounds,
                "eval_interval": rounds, "sample_seed": seed, "straggler_balancing": balancing,
                "device_conf_file": traces / "client_device_capacity",
                "device_avail_file": traces / "client_behave_trace"}
    subprocess.run([str(CLI), "start", str(TRACES_CONF), "--in-process", "--timestamp", timestamp, *_sets(settings)],
                   cwd=REPO_ROOT, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    with (scratch / "logs" / "digits_traces" / timestamp / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return BalancingRun(
        mean_round_s=float(rows[-1]["clock_s"]) / len(rows),  # clock_s: the clock at the end of the round, from 0
        completed_per_round=statistics.mean(int(row["completed"]) for row in rows),
        shortened_per_round=statistics.mean(int(row["shortened_clients"]) for row in rows),
        final_top1=float(rows[-1]["test_top1"]),
    )


# report ---------------------------------------------------------------------------------------------------------
def _seconds(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} / {max(values):.3f}" if values else "-"


def detection_row(label: str, detections: Sequence[Detection]) -> str:
    arrived = [d.arrival_s for d in detections if d.arrival_s is not None]
    logged = [d.logged_s for d in detections if d.logged_s is not None]
    reasons = sorted({re.sub(r"\d+\.\d+ s", "N s", re.sub(r"pid \d+", "pid N", d.reason)) for d in detections})
    return (f"| {label} | {len(arrived)}/{len(detections)} | {_seconds(arrived)} | {_seconds(logged)} | "
            f"{'; '.join(reasons)} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="kills per case (default: 5 for forked executors, 3 for each remote case)")
    parser.add_argument("--quick", action="store_true",
                        help="one kill per case, one seed and 5 rounds for balancing (a smoke run)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="sample_seed of the balancing runs")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each balancing run")
    args = parser.parse_args(argv)
    forked_repeats = 1 if args.quick else args.repeats or 5
    remote_repeats = 1 if args.quick else args.repeats or 3
    seeds = args.seeds[:1] if args.quick else args.seeds
    rounds = min(args.rounds, 5) if args.quick else args.rounds
    rng = random.Random(0)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="failure_detection_") as folder:
        scratch = Path(folder)
        forked = []
        for index in range(forked_repeats):
            forked.append(forked_detection(scratch, index, rng))
            print(f"  forked kill {index + 1}: {forked[-1]}", file=sys.stderr, flush=True)
        remote: dict[str, list[Detection]] = {}
        for timeout_s in (5.0, 10.0):
            for sig, verb in ((signal.SIGKILL, "killed (SIGKILL)"), (signal.SIGSTOP, "frozen (SIGSTOP)")):
                label = f"remote, {verb}, executor_timeout {timeout_s:.0f} s"
                for index in range(remote_repeats):
                    name = f"remote_{timeout_s:.0f}_{sig}_{index}"
                    remote.setdefault(label, []).append(remote_detection(scratch, name, timeout_s, sig, rng))
                    print(f"  {label} {index + 1}: {remote[label][-1]}", file=sys.stderr, flush=True)

        subprocess.run([str(CLI), "traces", str(scratch / "traces"), "--clients", "100", "--seed", "0"],
                       cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        balancing: dict[tuple[str, bool], list[BalancingRun]] = {}
        for regime in REGIMES:
            for on in (False, True):
                balancing[regime, on] = [balancing_run(scratch, regime, on, seed, rounds) for seed in seeds]
                print(f"  balancing {regime} {'on' if on else 'off'}: {balancing[regime, on]}", file=sys.stderr,
                      flush=True)

    print("\n### Detection of a dead executor (seconds from the signal to the aggregator's death line)\n")
    print("| case | detected | median / max, by arrival | median / max, by log timestamp | logged reason |")
    print("|---|---|---|---|---|")
    print(detection_row("forked by `start`, killed (SIGKILL), executor_timeout 600 s", forked))
    for label, detections in remote.items():
        print(detection_row(label, detections))

    print(f"\n### Straggler balancing (digits on device traces, {rounds} rounds, seeds "
          f"{', '.join(map(str, seeds))}: means over the seeds)\n")
    print("| completion | balancing | simulated s / round | completed / round | shortened / round | final top-1 "
          "(per seed) |")
    print("|---|---|---|---|---|---|")
    for (regime, on), runs in balancing.items():
        top1 = ", ".join(f"{run.final_top1:.3f}" for run in runs)
        print(f"| {regime} | {'on' if on else 'off'} | {statistics.mean(r.mean_round_s for r in runs):.1f} | "
              f"{statistics.mean(r.completed_per_round for r in runs):.1f} | "
              f"{statistics.mean(r.shortened_per_round for r in runs):.1f} | "
              f"{statistics.mean(r.final_top1 for r in runs):.3f} ({top1}) |")
    print(f"\nwall time of the benchmark: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
