"""Synchronous and asynchronous buffered aggregation on simulated devices: time to accuracy on traced digits.

    python benchmark/experiments/async_digits.py [--seeds 1 2 3] [--targets 0.85 0.9]

Runs benchmark/configs/digits/traces.yml (100 clients on synthetic FedScale-format device and availability traces,
written first when missing) once per mode and seed. ``sync``: rounds of 10 completing clients out of 13 selected.
``async`` (docs/asynchronous.md): clients check in every 3 simulated seconds, up to 30 train at once, and every 10
updates make a new model version, each weighted by 1/sqrt(1 + staleness) and dropped beyond 5 versions. Prints the
simulated seconds each run took to reach each target test accuracy (top-1), read from its metrics.csv.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from selection_digits import REPO_ROOT, TRACES, ensure_traces, run_job, time_to_accuracy

MODES = {
    "sync": {"rounds": 60},
    "async": {"rounds": 150, "async_mode": True, "async_buffer": 10, "max_concurrency": 30, "max_staleness": 5,
              "arrival_interval": 3},
}


def last_row(metrics_csv: Path) -> dict[str, str]:
    with metrics_csv.open(newline="") as handle:
        return list(csv.DictReader(handle))[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--targets", type=float, nargs="+", default=[0.85, 0.9])
    args = parser.parse_args()
    ensure_traces()
    print(f"traces: {TRACES.relative_to(REPO_ROOT)}")
    lines = []
    with tempfile.TemporaryDirectory(prefix="async_digits_") as scratch:
        for mode, settings in MODES.items():
            for target in args.targets:
                lines.append((mode, target, []))
            finals = []
            for seed in args.seeds:
                metrics = run_job(f"{mode}_{seed}", {**settings, "sample_seed": seed}, Path(scratch))
                for line_mode, target, times in lines:
                    if line_mode == mode:
                        times.append(time_to_accuracy(metrics, target))
                final = last_row(metrics)
                finals.append((float(final["clock_s"]), float(final["test_top1"])))
                print(f"  {mode} seed {seed}: {final['round']} rounds, clock {float(final['clock_s']):.0f} s, "
                      f"final top-1 {float(final['test_top1']):.4f}", flush=True)
    seeds = "  ".join(f"{'seed ' + str(seed):>8}" for seed in args.seeds)
    print("\nsimulated seconds to the target top-1 (digits, 100 clients on traces)")
    print(f"{'mode':<7}{'target':>7}  {seeds}  {'mean':>10}")
    for mode, target, times in lines:
        reached = [time for time in times if time is not None]
        mean = f"{statistics.mean(reached):.0f}" if len(reached) == len(times) else "not all"
        cells = "  ".join(f"{time:>8.0f}" if time is not None else f"{'-':>8}" for time in times)
        print(f"{mode:<7}{target:>7.2f}  {cells}  {mean:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
