"""Halor on and off: digits, 100 clients with Dirichlet(0.1) label skew, 10 per round, the same rounds.

    python benchmark/experiments/halor_digits.py [--seeds 1 2 3] [--target 0.85] [--rounds 80] [--variants ...]

Runs benchmark/configs/digits/halor.yml in one process per run (the memory transport: the same aggregator and
executors as the gRPC runtime, without processes) once per variant and seed: ``off`` (``halor: False``), and Halor
with each resampling mode (``under``, Halor's rule, and ``over``). Prints the final test accuracy (mean ± std over
seeds), the rounds to reach the target top-1, and, for Halor, how far its global distribution was from the true label
distribution of the training set. That distance reads the training labels directly: it is a check of this
experiment, never something the aggregator computes.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.halor.distribution import total_variation
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "benchmark" / "configs" / "digits" / "halor.yml"


@dataclass(frozen=True)
class RunSummary:
    final_top1: float
    rounds_to_target: int | None
    distance_to_truth: float | None  # total variation of Halor's last distribution from the training set's


VARIANTS = {
    "off": {"halor": False},
    "under": {"halor": True, "halor_resample": "under"},
    "over": {"halor": True, "halor_resample": "over"},
}


def run(variant: str, seed: int, rounds: int, target: float, log_path: Path) -> RunSummary:
    cfg = load_config(CONFIG, overrides={**VARIANTS[variant], "sample_seed": seed, "rounds": rounds,
                                         "log_path": str(log_path)})
    outcome = run_in_process(cfg, timestamp=f"{variant}_{seed}", echo=False)
    tested = [(metrics.round, metrics.test.top1) for metrics in outcome.history if metrics.test is not None]
    reached = next((round_index for round_index, top1 in tested if top1 >= target), None)
    distance = None
    last = outcome.history[-1].class_distribution
    if last is not None:
        dataset = FederatedDataset.from_job(cfg.job)
        truth = np.sum([dataset.label_counts(client) for client in dataset.client_ids], axis=0)
        distance = total_variation(np.array(last), truth)
    return RunSummary(tested[-1][1], reached, distance)


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    logging.getLogger("fedscale_halor").setLevel(logging.WARNING)
    table = []
    with tempfile.TemporaryDirectory(prefix="halor_digits_") as scratch:
        for variant in args.variants:
            summaries = [run(variant, seed, args.rounds, args.target, Path(scratch)) for seed in args.seeds]
            for seed, summary in zip(args.seeds, summaries, strict=True):
                print(f"  {variant} seed {seed}: {summary}", flush=True)
            reached = [s.rounds_to_target for s in summaries]
            rounds_cell = "  ".join(f"{r:>4}" if r is not None else f"{'-':>4}" for r in reached)
            mean_rounds = (f"{statistics.mean(r for r in reached if r is not None):.1f}"
                           if all(r is not None for r in reached) else "not all reached")
            distances = [s.distance_to_truth for s in summaries if s.distance_to_truth is not None]
            distance_cell = f"{statistics.mean(distances):.3f}" if distances else "-"
            table.append(f"{variant:<7}{_mean_std([s.final_top1 for s in summaries]):>18}"
                         f"   {rounds_cell}   {mean_rounds:>8}   {distance_cell:>10}")
    print(f"\ndigits, 100 clients, Dirichlet 0.1, 10 per round, {args.rounds} rounds, seeds {args.seeds}")
    print(f"{'Halor':<7}{'final top-1':>18}   {'rounds to ' + str(args.target):>{6 * len(args.seeds)}}"
          f"   {'mean':>8}   {'TV to truth':>10}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
