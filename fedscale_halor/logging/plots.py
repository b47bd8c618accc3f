"""Time-to-accuracy plots that compare finished (or running) runs from their log folders.

Each run folder holds ``metrics.csv`` and the resolved ``config.yml``; the legend names each run by the config keys
whose values differ between the runs compared (the parameters of a sweep), or by its folder when none differ.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

# keys that differ between any two runs without being a parameter of the comparison
_NOT_PARAMETERS = frozenset({"log_path", "job_name", "data_dir", "exp_path", "device_conf_file", "device_avail_file"})


@dataclass(frozen=True)
class RunCurve:
    label: str
    rounds: tuple[int, ...]
    clock_s: tuple[float, ...]
    top1: tuple[float, ...]


def read_curve(run_dir: Path) -> tuple[list[int], list[float], list[float]]:
    """The evaluated rounds of a run: round, simulated clock, top-1 accuracy."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.csv (is it a run folder?)")
    rounds, clocks, accuracies = [], [], []
    with metrics.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("test_top1"):
                rounds.append(int(row["round"]))
                clocks.append(float(row["clock_s"]))
                accuracies.append(float(row["test_top1"]))
    return rounds, clocks, accuracies


def _job_settings(run_dir: Path) -> dict[str, object]:
    path = run_dir / "config.yml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    settings: dict[str, object] = {}
    for entry in data.get("job_conf", []) or []:
        if isinstance(entry, dict):
            settings.update(entry)
    return settings


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """A label per run from the job keys whose values differ across the runs."""
    settings = [_job_settings(run_dir) for run_dir in run_dirs]
    keys = sorted({key for each in settings for key in each} - _NOT_PARAMETERS)
    varying = [key for key in keys if len({repr(each.get(key)) for each in settings}) > 1]
    labels = []
    for run_dir, each in zip(run_dirs, settings, strict=True):
        parts = [f"{key}={each.get(key)}" for key in varying]
        labels.append(", ".join(parts) if parts else f"{run_dir.parent.name}/{run_dir.name}")
    return labels


def plot_time_to_accuracy(run_dirs: Sequence[Path], out: Path, *, target: float | None = None) -> Path:
    """Write a PNG with top-1 accuracy against rounds (left) and against simulated time (right)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or assumed
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise ValueError("plot: no run folder given")
    curves = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs), strict=True):
        rounds, clocks, accuracies = read_curve(run_dir)
        curves.append(RunCurve(label, tuple(rounds), tuple(clocks), tuple(accuracies)))
    figure, (by_round, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for curve in curves:
        by_round.plot(curve.rounds, curve.top1, marker=".", label=curve.label)
        by_time.plot(curve.clock_s, curve.top1, marker=".", label=curve.label)
    by_round.set_xlabel("round")
    by_time.set_xlabel("simulated time (s)")
    by_round.set_ylabel("test top-1 accuracy")
    for axes in (by_round, by_time):
        axes.grid(alpha=0.3)
        if target is not None:
            axes.axhline(target, color="grey", linestyle="--", linewidth=1)
    by_time.legend(fontsize="small", loc="lower right")
    figure.suptitle("time to accuracy")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
