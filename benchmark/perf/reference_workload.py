"""The reference workload: the floor (a plain PyTorch loop), then our runtime with 1 and with 2 executors.

    python benchmark/perf/reference_workload.py [--rounds 5] [--out results.json]

2 CPU threads in all: the floor uses 2 torch threads, the single executor 2 training lanes of 1 thread, two executors
1 thread each. Last, the floor runs again with the local trainer's kernels, to tell the runtime's own cost apart.
Prints the median seconds per round of rounds 2.. and the peak memory of each whole process tree (RSS and PSS sums).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Measured,
    gib,
    ratio,
    round_seconds_from_metrics,
    run_measured,
    start_job,
    wait_for_quiet_machine,
    write_synthetic_spec,
)

HERE = Path(__file__).resolve().parent
SPEC = {"num_train": 20_000, "num_test": 620, "num_classes": 62, "input_shape": [1, 28, 28], "seed": 0}
TARGETS = {"1 executor": 1.10, "2 executors": 0.85}
# The floor again, with the local trainer's kernels (channels-last convolutions, SGD inside backward): what the
# runtime costs on top of the same arithmetic, as against what its kernels gain over a plain loop.
KERNELS_FLOOR = "floor, runtime's kernels"


def measure_floor(data_dir: Path, work: Path, rounds: int, runtime_kernels: bool = False) -> Measured:
    name = "floor_runtime_kernels" if runtime_kernels else "floor"
    out = work / f"{name}.json"
    kernels = ["--runtime-kernels"] if runtime_kernels else []
    memory = run_measured([sys.executable, str(HERE / "floor.py"), "--data-dir", str(data_dir), "--out", str(out),
                           "--rounds", str(rounds), "--threads", "2", *kernels], log_file=work / f"{name}.log")
    return Measured(tuple(json.loads(out.read_text())["round_seconds"]), memory, {})


def measure_runtime(data_dir: Path, work: Path, rounds: int, executors: int) -> Measured:
    overrides = {"data_dir": data_dir, "log_path": work / "logs", "rounds": rounds,
                 "worker_ips": f"127.0.0.1:[{executors}]", "executor_threads": 2 // executors}
    timestamp = f"executors_{executors}"
    memory = start_job(HERE / "reference_workload.yml", overrides, timestamp, log_file=work / f"{timestamp}.log")
    return Measured(round_seconds_from_metrics(work / "logs" / "reference_workload" / timestamp), memory, {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reference_workload_") as scratch:
        work = Path(scratch)
        data_dir = write_synthetic_spec(work / "data", **SPEC)
        runs: dict[str, Measured] = {}
        for name, measure in (("floor", lambda: measure_floor(data_dir, work, args.rounds)),
                              ("1 executor", lambda: measure_runtime(data_dir, work, args.rounds, 1)),
                              ("2 executors", lambda: measure_runtime(data_dir, work, args.rounds, 2)),
                              (KERNELS_FLOOR, lambda: measure_floor(data_dir, work, args.rounds, True))):
            wait_for_quiet_machine()
            runs[name] = measure()
            print(f"  {name}: rounds {', '.join(f'{s:.2f}' for s in runs[name].round_seconds)} s", flush=True)
    floor_s = runs["floor"].median_round_s()
    print(f"\nreference workload, {args.rounds} rounds, median of rounds 2-{args.rounds}:")
    print(f"{'':<26}{'s/round':>9}{'vs floor':>10}{'target':>9}{'tree RSS':>11}{'tree PSS':>11}")
    for name, run in runs.items():
        target = f"<={TARGETS[name]:.2f}x" if name in TARGETS else ""
        print(f"{name:<26}{run.median_round_s():>9.2f}{ratio(run.median_round_s(), floor_s):>10}{target:>9}"
              f"{gib(run.memory.peak_rss_bytes):>11}{gib(run.memory.peak_pss_bytes):>11}")
    kernels_s = runs[KERNELS_FLOOR].median_round_s()
    print(f"against the floor with the runtime's kernels: 1 executor "
          f"{ratio(runs['1 executor'].median_round_s(), kernels_s)}, 2 executors "
          f"{ratio(runs['2 executors'].median_round_s(), kernels_s)}")
    if args.out:
        Path(args.out).write_text(json.dumps({name: {"round_seconds": run.round_seconds,
                                                     "median_round_s": run.median_round_s(),
                                                     "peak_rss_bytes": run.memory.peak_rss_bytes,
                                                     "peak_pss_bytes": run.memory.peak_pss_bytes}
                                              for name, run in runs.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
