"""Client selection on simulated devices: random, Oort, REFL and SAFA on digits with device and availability traces.

    python benchmark/experiments/selection_digits.py [--seeds 1 2 3] [--target 0.85] [--samplers ...]

Runs benchmark/configs/digits/traces.yml (100 clients on synthetic FedScale-format device and availability traces,
written first with `fedscale-halor traces` when missing) once per sampler and seed, and prints the simulated time
each run took to reach the target test accuracy (top-1), read from its metrics.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "benchmark" / "configs" / "digits" / "traces.yml"
TRACES = REPO_ROOT / "data" / "traces" / "digits"
# REFL: the least available online clients first, and stragglers' updates kept with REFL's staleness scaling;
# SAFA: random selection, stragglers' updates kept up to 5 rounds late at full weight
SAMPLERS = {
    "random": {"sample_mode": "random"},
    "oort": {"sample_mode": "oort"},
    "refl": {"sample_mode": "random", "avail_priority": 1, "stale_update": -1, "stale_factor": -4},
    "safa": {"sample_mode": "random", "stale_update": 5, "stale_factor": 1},
}


def time_to_accuracy(metrics_csv: Path, target: float) -> float | None:
    """Simulated seconds at the first evaluation with top-1 at or above ``target``; None if never reached."""
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["test_top1"] and float(row["test_top1"]) >= target:
                return float(row["clock_s"])
    return None


def run(sampler: str, seed: int, log_path: Path) -> Path:
    return run_job(f"{sampler}_{seed}", {"sample_seed": seed, **SAMPLERS[sampler]}, log_path)


def run_job(timestamp: str, settings: dict[str, object], log_path: Path) -> Path:
    """Runs the traced digits job with ``settings`` on top; returns its metrics.csv."""
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(CONFIG), "--timestamp", timestamp,
               "--set", f"log_path={log_path}"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                   env={**os.environ, "FEDSCALE_HALOR_HOME": str(REPO_ROOT)})
    return log_path / "digits_traces" / timestamp / "metrics.csv"


def ensure_traces() -> None:
    if not (TRACES / "client_device_capacity").is_file():
        subprocess.run([sys.executable, "-m", "fedscale_halor.cli", "traces", str(TRACES), "--clients", "100",
                        "--seed", "0"], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--samplers", nargs="+", choices=sorted(SAMPLERS), default=list(SAMPLERS))
    args = parser.parse_args()
    ensure_traces()
    rows = []
    with tempfile.TemporaryDirectory(prefix="selection_digits_") as scratch:
        for sampler in args.samplers:
            times = [time_to_accuracy(run(sampler, seed, Path(scratch)), args.target) for seed in args.seeds]
            reached = [t for t in times if t is not None]
            mean = f"{statistics.mean(reached):.0f}" if len(reached) == len(times) else "not all reached"
            cells = "  ".join(f"{t:>8.0f}" if t is not None else f"{'-':>8}" for t in times)
            rows.append(f"{sampler:<10}{cells}  {mean:>10}")
            print(f"  {sampler}: {times}", flush=True)
    seeds = "  ".join(f"{'seed ' + str(seed):>8}" for seed in args.seeds)
    print(f"\nsimulated seconds to top-1 >= {args.target} (digits, 100 clients on traces, 10 per round)")
    print(f"{'sampler':<10}{seeds}  {'mean':>10}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
