"""Auxo against FedAvg on digits with planted group skew: accuracy per group and overall, mean with 95% interval.

    python benchmark/experiments/auxo_digits.py [--seeds 1 2 3 4 5] [--rounds 60] [--target 0.8]
                                                [--variants fedavg auxo] [--partitioning -1]

Runs benchmark/configs/digits/auxo.yml in one process per run (the memory transport: the same aggregator and
executors as the gRPC runtime, without processes) once per variant and seed (``sample_seed``: the partition, the
selection, the training shuffles and Auxo's policy). 100 clients in two planted groups whose label maps differ
(``label_groups: 2``), 20 per round. ``fedavg`` trains one model (``auxo: False``); ``auxo`` lets Auxo's cohorts
split at their 5th clustering. Every client is tested with its cohort's model on its own group's test view.

Prints, per variant: the final top-1 of each group (the mean over its clients) and overall (over all clients), the
first evaluated round whose overall top-1 reaches the target, and for Auxo the final purity (the share of clients in
their cohort's majority group). Each figure is the mean over seeds with its 95% confidence interval (Student's t).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from fedscale_halor.auxo.outcome import cohort_purity, view_top1
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.types import RoundMetrics

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "benchmark" / "configs" / "digits" / "auxo.yml"

VARIANTS: Mapping[str, Mapping[str, object]] = {"fedavg": {"auxo": False}, "auxo": {"auxo": True}}


@dataclass(frozen=True)
class RunSummary:
    group_top1: Mapping[int, float]
    overall_top1: float
    rounds_to_target: int | None
    purity: float


def client_weighted(rows: Sequence[RoundMetrics]) -> tuple[dict[int, float], float]:
    """Per group and overall, the mean top-1 over clients, each tested with its cohort's model."""
    correct: dict[int, float] = {}
    clients: dict[int, int] = {}
    for metrics in rows:
        for view, top1 in view_top1(metrics).items():
            count = metrics.view_members[view]
            correct[view] = correct.get(view, 0.0) + top1 * count
            clients[view] = clients.get(view, 0) + count
    groups = {view: correct[view] / clients[view] for view in sorted(clients)}
    return groups, sum(correct.values()) / sum(clients.values())


def evaluated_rounds(history: Sequence[RoundMetrics]) -> dict[int, list[RoundMetrics]]:
    rounds: dict[int, list[RoundMetrics]] = {}
    for metrics in history:
        if metrics.test is not None:
            rounds.setdefault(metrics.round, []).append(metrics)
    return rounds


def run(variant: str, seed: int, rounds: int, target: float, partitioning: int, log_path: Path) -> RunSummary:
    cfg = load_config(CONFIG, overrides={**VARIANTS[variant], "sample_seed": seed, "rounds": rounds,
                                         "partitioning": partitioning, "log_path": str(log_path)})
    outcome = run_in_process(cfg, timestamp=f"{variant}_{seed}", echo=False)
    tested = evaluated_rounds(outcome.history)
    reached = next((round_index for round_index, rows in sorted(tested.items())
                    if client_weighted(rows)[1] >= target), None)
    final = tested[max(tested)]
    groups, overall = client_weighted(final)
    return RunSummary(groups, overall, reached, cohort_purity(final))


def mean_interval(values: Sequence[float], digits: int = 4) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--partitioning", type=int, default=-1,
                        help="the partition within the groups (docs/configuration.md); -1: samples spread evenly")
    args = parser.parse_args()
    logging.getLogger("fedscale_halor").setLevel(logging.WARNING)
    summaries: dict[str, list[RunSummary]] = {}
    with tempfile.TemporaryDirectory(prefix="auxo_digits_") as scratch:
        for variant in args.variants:
            for seed in args.seeds:
                summary = run(variant, seed, args.rounds, args.target, args.partitioning, Path(scratch))
                summaries.setdefault(variant, []).append(summary)
                groups = ", ".join(f"group {group} {top1:.4f}" for group, top1 in summary.group_top1.items())
                print(f"  {variant} seed {seed}: {groups}, overall {summary.overall_top1:.4f}, "
                      f"rounds to {args.target}: {summary.rounds_to_target or '-'}, purity {summary.purity:.3f}",
                      flush=True)
    print(f"\ndigits, 100 clients in 2 planted label groups, 20 per round, {args.rounds} rounds, "
          f"partitioning {args.partitioning}; mean ± 95% CI over seeds {args.seeds}")
    print("| variant | group 0 top-1 | group 1 top-1 | overall top-1 | rounds to "
          f"{args.target} | purity |")
    print("|---|---|---|---|---|---|")
    for variant, runs in summaries.items():
        cells = [mean_interval([run.group_top1[group] for run in runs]) for group in (0, 1)]
        cells.append(mean_interval([run.overall_top1 for run in runs]))
        reached = [run.rounds_to_target for run in runs if run.rounds_to_target is not None]
        cells.append(mean_interval([float(r) for r in reached], 1) if len(reached) == len(runs)
                     else f"{len(reached)} of {len(runs)} reached")
        cells.append(mean_interval([run.purity for run in runs], 3))
        print(f"| {variant} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
