"""Scaling: our seconds per round beside the two-plain-process floor, selection over many registered clients, memory.

    python benchmark/perf/scaling.py [--per-round 10 100 500 1000] [--rounds 11] [--pairs 3]
                                     [--registered 1000 ... 1000000] [--skip-rounds] [--skip-selection]
                                     [--skip-million] [--skip-memory]

The workload (scaling.yml): 2,000 clients of 20 synthetic 8x8 samples, a one-hidden-layer perceptron, 5 local steps
of plain SGD with batch 20, FedAvg, on 2 CPU cores. For each clients-per-round count it runs, in this invocation:
- **floor**: two plain PyTorch processes at once (floor.py, 1 torch thread each), each training half the round's
  clients with a running weighted sum: what two cores do with no framework at all;
- **ours**: ``fedscale-halor start`` with 2 executors of 1 thread each over gRPC, the aggregator a third process.
Seconds per round are the median of rounds 2.. (round 1 pays for warm-up); memory is the peak RSS of the busiest
process of each run (the aggregator, or an executor). The floor and ours alternate ``--pairs`` times. This shared
machine's speed drifts by 10-50% over minutes, and other tenants' load only ever adds time, so the table's seconds
are each side's fastest run and its ratio is theirs; the range of the pairs' own ratios is printed beside it. Then
selection: milliseconds per round for random and Oort over 10^3 .. 10^6 registered clients (selection_scale.py).
Then memory over 20 rounds at 100 and at 1,000 clients per round (the aggregator's and the executors' RSS early and
late in the run). Last, a job over a million synthetic
clients: its start and its memory beyond PyTorch (million_start.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    REPO_ROOT,
    TreeMemorySampler,
    gib,
    round_seconds_from_metrics,
    start_job,
    wait_for_quiet_machine,
    write_synthetic_spec,
)

HERE = Path(__file__).resolve().parent
SPEC = {"num_train": 40_000, "num_test": 500, "num_classes": 10, "input_shape": [1, 8, 8], "seed": 0}
CLIENTS = 2_000
TARGETS = {500: 1.3, 1000: 1.5}


def floor_round_s(data_dir: Path, work: Path, per_round: int, rounds: int) -> float:
    """Two plain processes side by side, each with half of the round's clients; a round ends with the slower."""
    commands = [[sys.executable, str(HERE / "floor.py"), "--data-dir", str(data_dir), "--model", "digits_mlp",
                 "--clients", str(CLIENTS), "--per-round", str(share), "--rounds", str(rounds), "--steps", "5",
                 "--batch", "20", "--threads", "1", "--seed", str(index), "--out", str(work / f"floor_{index}.json")]
                for index, share in enumerate((per_round - per_round // 2, per_round // 2))]
    processes = [subprocess.Popen(command, cwd=REPO_ROOT) for command in commands]
    if any(process.wait() != 0 for process in processes):
        raise RuntimeError("a floor process failed")
    seconds = [json.loads((work / f"floor_{index}.json").read_text())["round_seconds"] for index in range(2)]
    return statistics.median(max(pair) for pair in list(zip(*seconds, strict=True))[1:])


def _run_job(data_dir: Path, work: Path, per_round: int, rounds: int, timestamp: str,
             sampler: TreeMemorySampler) -> Path:
    """The scaling job with 2 executors of 1 thread, watched by ``sampler``; returns its run folder."""
    overrides = {"data_dir": data_dir, "log_path": work / "logs", "rounds": rounds, "num_participants": per_round,
                 "worker_ips": "127.0.0.1:[2]", "executor_threads": 1}
    with sampler:
        start_job(HERE / "scaling.yml", overrides, timestamp, log_file=work / f"{timestamp}.log")
    return work / "logs" / "scaling" / timestamp


def ours(data_dir: Path, work: Path, per_round: int, rounds: int, timestamp: str) -> tuple[float, int]:
    peaks = _PeakPerProcess()
    seconds = round_seconds_from_metrics(_run_job(data_dir, work, per_round, rounds, timestamp, peaks))
    return statistics.median(seconds[1:]), peaks.largest


class _MemoryTrace(TreeMemorySampler):
    """Every child process's RSS over time: (seconds since start, pid, rss, whether it is the job's root)."""

    def __init__(self) -> None:
        super().__init__(psutil.Process().pid, interval_s=0.2)
        self.samples: list[tuple[float, int, int, bool]] = []

    def _run(self) -> None:
        me, started = psutil.Process(), time.monotonic()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    is_root = child.ppid() == me.pid
                    self.samples.append((time.monotonic() - started, child.pid, child.memory_info().rss, is_root))
                except psutil.Error:
                    continue
            self._stop.wait(self._interval_s)

    def early_and_late(self) -> dict[str, tuple[int, int]]:
        """Per role (aggregator, executors), the largest RSS in the second fifth of the run (past start-up) and in
        its last fifth."""
        if not self.samples:
            return {}
        end = max(sample[0] for sample in self.samples)
        roles: dict[str, tuple[int, int]] = {}
        for role, root in (("aggregator", True), ("executor", False)):
            early = [rss for at, _, rss, is_root in self.samples if is_root == root and end * 0.2 <= at < end * 0.4]
            late = [rss for at, _, rss, is_root in self.samples if is_root == root and at >= end * 0.8]
            roles[role] = (max(early, default=0), max(late, default=0))
        return roles


def memory_over_rounds(data_dir: Path, work: Path, per_round: int, rounds: int) -> dict[str, tuple[int, int]]:
    trace = _MemoryTrace()
    _run_job(data_dir, work, per_round, rounds, f"memory_{per_round}", trace)
    return trace.early_and_late()


class _PeakPerProcess(TreeMemorySampler):
    """The largest RSS any one process of this interpreter's children reached."""

    def __init__(self) -> None:
        super().__init__(psutil.Process().pid, interval_s=0.2)
        self.largest = 0

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    self.largest = max(self.largest, child.memory_info().rss)
                except psutil.Error:
                    continue
            self._stop.wait(self._interval_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-round", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--pairs", type=int, default=3, help="floor/ours runs, alternating, per clients-per-round")
    parser.add_argument("--registered", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-rounds", action="store_true")
    parser.add_argument("--skip-selection", action="store_true")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not args.skip_rounds:
        rows = []
        with tempfile.TemporaryDirectory(prefix="scaling_") as scratch:
            work = Path(scratch)
            data_dir = write_synthetic_spec(work / "data", **SPEC)
            for per_round in args.per_round:
                pairs = []
                for pair in range(args.pairs):
                    wait_for_quiet_machine()
                    floor_s = floor_round_s(data_dir, work, per_round, args.rounds)
                    wait_for_quiet_machine()
                    our_s, peak = ours(data_dir, work, per_round, args.rounds, f"per_round_{per_round}_{pair}")
                    pairs.append((floor_s, our_s, peak))
                    print(f"  {per_round} per round: floor {floor_s:.3f} s, ours {our_s:.3f} s "
                          f"({our_s / floor_s:.2f}x)", flush=True)
                rows.append((per_round, pairs))
        print(f"\n{CLIENTS} clients, 2 cores, median s/round of rounds 2-{args.rounds}; the fastest of {args.pairs} "
              "alternating floor/ours runs each:")
        print(f"{'clients/round':>13}{'floor s':>9}{'ours s':>9}{'ratio':>8}{'pair ratios':>14}{'target':>8}"
              f"{'peak RSS/process':>18}")
        for per_round, pairs in rows:
            floor_s, our_s = min(pair[0] for pair in pairs), min(pair[1] for pair in pairs)
            ratios = [pair[1] / pair[0] for pair in pairs]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
            target = f"<={TARGETS[per_round]:.1f}x" if per_round in TARGETS else ""
            print(f"{per_round:>13}{floor_s:>9.3f}{our_s:>9.3f}{our_s / floor_s:>7.2f}x{spread:>14}{target:>8}"
                  f"{gib(max(pair[2] for pair in pairs)):>18}")
    if not args.skip_memory:
        print("\nmemory over 20 rounds (RSS, largest of the second fifth of the run -> of its last fifth):")
        with tempfile.TemporaryDirectory(prefix="scaling_memory_") as scratch:
            work = Path(scratch)
            data_dir = write_synthetic_spec(work / "data", **SPEC)
            for per_round in (100, 1000):
                roles = memory_over_rounds(data_dir, work, per_round, 20)
                cells = ", ".join(f"{role} {gib(early)} -> {gib(late)}" for role, (early, late) in roles.items())
                print(f"  {per_round} per round: {cells}", flush=True)
    if not args.skip_selection:
        from selection_scale import measure_selection

        print("\nselection of 100 clients per round, median ms:")
        print(f"{'registered':>11}{'random ms':>11}{'oort ms':>10}{'availability ms':>17}{'oort register s':>17}")
        for registered in args.registered:
            figures = measure_selection(registered)
            print(f"{registered:>11}{figures['random_ms']:>11.2f}{figures['oort_ms']:>10.2f}"
                  f"{figures['availability_ms']:>17.2f}{figures['oort_register_s']:>17.3f}", flush=True)
    if not args.skip_million:
        from million_start import run as start_million

        print("\na job over 1,000,000 synthetic clients (million_start.py), one process:")
        for sample_mode in ("random", "oort"):
            with tempfile.TemporaryDirectory(prefix="million_") as scratch:
                figures = start_million(1_000_000, sample_mode, 3, Path(scratch))
            later = ", ".join(f"{seconds:.2f}" for seconds in figures["later_rounds_s"])  # type: ignore[union-attr]
            print(f"  {sample_mode}: start to the end of round 1 {figures['start_s']:.1f} s (target < 60 s), later "
                  f"rounds {later} s, peak RSS beyond PyTorch {figures['beyond_baseline_mib']:.0f} MiB "
                  f"(target < 2048 MiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
