"""Halor off and on, five seeds each, in two regimes: Halor's own, and a long-tailed global label distribution.

    python benchmark/experiments/halor_regimes.py [--seeds 1 2 3 4 5] [--rounds 80] [--regimes halor long_tail]
                                                  [--variants off halor window over]

Regimes (100 clients, 10 per round, Dirichlet 0.1 label skew, filter_less 11, the plain mean of Halor's aggregator):
- ``halor``: Halor's own regime, benchmark/configs/digits/halor_regime.yml: digits, Halor's partition (code 8) with
  60 samples per client;
- ``long_tail``: benchmark/configs/synthetic/long_tail.yml: a synthetic data set whose classes are long-tailed
  (class c holds a share proportional to (c + 1)^-1.2 of the training and of the test set), each class split over
  the clients by Dirichlet shares (code 9), so the clients' union keeps the long tail.

Variants: ``off`` (no Halor); ``halor`` (``data_regulation: 1``: the exact distribution over all clients from one
run of the protocol, Halor's ``under`` rule, its guard on resampled sizes); ``window`` (``under`` toward the last
five rounds' sums, with the guard); ``over`` (the window, each client keeping its size).

Prints per run and per variant: the final top-1 (mean and 95% confidence interval over the seeds, Student's t), its
difference from ``off`` with the same seed (the same partition and initial model; mean and 95% interval), the
first evaluated round at or above the target, and the share of the job's time the Halor protocol took.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
REGIMES = {
    "halor": (REPO_ROOT / "benchmark" / "configs" / "digits" / "halor_regime.yml", 0.85),
    "long_tail": (REPO_ROOT / "benchmark" / "configs" / "synthetic" / "long_tail.yml", 0.65),
}
# The long-tailed data set: 60 training samples per client on average; nearest-centroid accuracy is about 0.83.
LONG_TAIL_SPEC = {"num_train": 6000, "num_test": 1500, "num_classes": 10, "input_shape": [1, 8, 8],
                  "separation": 0.35, "class_zipf": 1.2}
VARIANTS = {
    "off": {"halor": False, "data_regulation": 0},
    "halor": {"halor": False, "data_regulation": 1},
    "window": {"halor": True, "data_regulation": 0, "halor_distribution": "window", "halor_resample": "under"},
    "over": {"halor": True, "data_regulation": 0, "halor_distribution": "window", "halor_resample": "over"},
}
# Student's t at 97.5% for 1..9 degrees of freedom: the half-width of a 95% interval is t * s / sqrt(n).
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)
_PROTOCOL_LINE = re.compile(r"Halor (?:sum over|exact distribution: sum over) .* in ([0-9.]+) s")


@dataclass(frozen=True)
class RunSummary:
    final_top1: float
    rounds_to_target: int | None
    protocol_share: float  # of the job's time (rounds plus the one-shot step)


def run(regime: str, variant: str, seed: int, rounds: int, log_path: Path) -> RunSummary:
    config, target = REGIMES[regime]
    cfg = load_config(config, overrides={**VARIANTS[variant], "sample_seed": seed, "rounds": rounds,
                                         "log_path": str(log_path)})
    if cfg.job.data_set == "synthetic":
        write_spec(Path(cfg.job.data_dir))
    outcome = run_in_process(cfg, timestamp=f"{regime}_{variant}_{seed}", echo=False)
    tested = [(metrics.round, metrics.test.top1) for metrics in outcome.history if metrics.test is not None]
    reached = next((round_index for round_index, top1 in tested if top1 >= target), None)
    log_text = (outcome.run_dir / "aggregator.log").read_text(encoding="utf-8")
    protocol_s = sum(float(seconds) for seconds in _PROTOCOL_LINE.findall(log_text))
    rounds_s = sum(metrics.wall_time_s for metrics in outcome.history)
    one_shot_s = protocol_s if VARIANTS[variant].get("data_regulation") == 1 else 0.0
    return RunSummary(tested[-1][1], reached, protocol_s / (rounds_s + one_shot_s))


def write_spec(data_dir: Path) -> None:
    """The long-tailed spec in the job's data folder; a different spec there is an error, not overwritten."""
    spec_file = data_dir / "synthetic.json"
    if spec_file.exists():
        if json.loads(spec_file.read_text()) != LONG_TAIL_SPEC:
            raise SystemExit(f"{spec_file} holds another synthetic spec: remove it or point data_dir elsewhere")
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(LONG_TAIL_SPEC, indent=2) + "\n")


def confidence_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (Student's t; 0 for a single value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, 0.0
    degrees = len(values) - 1
    t = _T_975[degrees - 1] if degrees <= len(_T_975) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--regimes", nargs="+", choices=list(REGIMES), default=list(REGIMES))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    logging.getLogger("fedscale_halor").setLevel(logging.WARNING)
    tables = []
    with tempfile.TemporaryDirectory(prefix="halor_regimes_") as scratch:
        for regime in args.regimes:
            target = REGIMES[regime][1]
            rows = [f"\n{regime}: {args.rounds} rounds, seeds {args.seeds}, target top-1 {target}",
                    f"{'variant':<8}{'final top-1 (95% CI)':>24}{'minus off, same seed':>24}   "
                    f"{'rounds to target':<28}{'protocol share':>15}"]
            baseline: list[float] | None = None
            for variant in args.variants:
                summaries = [run(regime, variant, seed, args.rounds, Path(scratch)) for seed in args.seeds]
                for seed, summary in zip(args.seeds, summaries, strict=True):
                    print(f"  {regime} {variant} seed {seed}: {summary}", flush=True)
                finals = [summary.final_top1 for summary in summaries]
                mean, half = confidence_interval(finals)
                if variant == "off":
                    baseline = finals
                paired = "-"
                if baseline is not None and variant != "off":
                    gain, gain_half = confidence_interval([a - b for a, b in zip(finals, baseline, strict=True)])
                    paired = f"{gain:+.4f} ± {gain_half:.4f}"
                reached = " ".join(str(s.rounds_to_target) if s.rounds_to_target is not None else "-"
                                   for s in summaries)
                share = statistics.mean(summary.protocol_share for summary in summaries)
                rows.append(f"{variant:<8}{f'{mean:.4f} ± {half:.4f}':>24}{paired:>24}   {reached:<28}{share:>14.1%}")
            tables.append("\n".join(rows))
    print("\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
