"""Time-to-accuracy plots that compare finished (or running) runs from their log folders.

Each run folder holds ``metrics.csv`` and the resolved ``config.yml``; the legend names each run by the config keys
whose values differ between the runs compared (the parameters of a sweep), or by its folder when none differ.

A run of several cohorts (``metrics.csv``'s ``cohort`` column; a file without it is cohort 0's alone) draws one line
per cohort, ``<run label> cohort <c>``, and one ``<run label> overall`` line: see ``overall_curve``. A run of one
cohort draws its one line, labelled by the run. An Auxo run's saved client signals are drawn by signal_plots.py.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# keys that differ between any two runs without being a parameter of the comparison
_NOT_PARAMETERS = frozenset({"log_path", "job_name", "data_dir", "exp_path", "device_conf_file", "device_avail_file"})


@dataclass(frozen=True)
class RunCurve:
    label: str
    rounds: tuple[int, ...]
    clock_s: tuple[float, ...]
    top1: tuple[float, ...]


@dataclass(frozen=True)
class _Evaluation:
    round: int
    clock_s: float
    top1: float
    samples: int
    members: int  # 0: the file has no member count (written before the column existed)


def _evaluations(run_dir: Path) -> dict[int, list[_Evaluation]]:
    """Each cohort's evaluated rounds, in the file's order."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.csv (is it a run folder?)")
    by_cohort: dict[int, list[_Evaluation]] = {}
    with metrics.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("test_top1"):
                cohort = int(row.get("cohort") or 0)
                by_cohort.setdefault(cohort, []).append(_Evaluation(
                    int(row["round"]), float(row["clock_s"]), float(row["test_top1"]),
                    int(row.get("test_samples") or 0), int(row.get("members") or 0)))
    return by_cohort


def _curve(label: str, evaluations: Sequence[_Evaluation]) -> RunCurve:
    return RunCurve(label, tuple(each.round for each in evaluations), tuple(each.clock_s for each in evaluations),
                    tuple(each.top1 for each in evaluations))


def read_curve(run_dir: Path, cohort: int = 0) -> tuple[list[int], list[float], list[float]]:
    """The evaluated rounds of a run's cohort: round, simulated clock, top-1 accuracy."""
    evaluations = _evaluations(run_dir).get(cohort, [])
    return ([each.round for each in evaluations], [each.clock_s for each in evaluations],
            [each.top1 for each in evaluations])


def overall_curve(run_dir: Path, label: str) -> RunCurve:
    """The job's accuracy over all its cohorts, at each round in which every cohort that ran was evaluated.

    A cohort ran in a round when it has a row of that round (cohorts branched later, or left without clients, have
    none). The accuracy is the mean of those cohorts' top-1 weighted by their clients, each row's ``members``:
    sum(top1_c * members_c) / sum(members_c), e.g. 0.5 for 30 clients and 0.8 for 10 give 0.575. Weighting by test
    samples would not do: a cohort whose members all hold one test view reports that view's result, on that view's
    samples, however many clients it has. A round with a row without a member count (a file written before the
    column existed) is weighted by ``test_samples`` instead, all its rows alike (0.5 on 100 and 0.8 on 300 samples
    give 0.725). Its simulated time is the latest of those cohorts' clocks, when the last of the evaluations was
    there. Rounds in which a cohort that ran was not evaluated, or whose weights sum to 0, are left out."""
    ran: dict[int, set[int]] = {}
    with (run_dir / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            ran.setdefault(int(row["round"]), set()).add(int(row.get("cohort") or 0))
    by_round: dict[int, dict[int, _Evaluation]] = {}
    for cohort, evaluations in _evaluations(run_dir).items():
        for each in evaluations:
            by_round.setdefault(each.round, {})[cohort] = each
    rounds, clocks, accuracies = [], [], []
    for round_index in sorted(by_round):
        evaluated = list(by_round[round_index].values())
        weights = _weights(evaluated)
        if set(by_round[round_index]) != ran[round_index] or sum(weights) == 0:
            continue
        rounds.append(round_index)
        clocks.append(max(each.clock_s for each in evaluated))
        accuracies.append(sum(each.top1 * weight for each, weight in zip(evaluated, weights, strict=True))
                          / sum(weights))
    return RunCurve(f"{label} overall", tuple(rounds), tuple(clocks), tuple(accuracies))


def _weights(evaluated: Sequence[_Evaluation]) -> list[int]:
    """Each cohort's clients, or each cohort's test samples when a row lacks its member count: one unit for the
    whole round, since clients and samples do not add up."""
    if all(each.members > 0 for each in evaluated):
        return [each.members for each in evaluated]
    return [each.samples for each in evaluated]


def run_curves(run_dirs: Sequence[Path]) -> list[RunCurve]:
    """The lines to draw: one per run of one cohort; per cohort and overall for a run of several."""
    curves = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs), strict=True):
        by_cohort = _evaluations(run_dir)
        if set(by_cohort) <= {0}:
            curves.append(_curve(label, by_cohort.get(0, [])))
            continue
        curves += [_curve(f"{label} cohort {cohort}", by_cohort[cohort]) for cohort in sorted(by_cohort)]
        curves.append(overall_curve(run_dir, label))
    return curves


def saved_job_settings(run_dir: Path) -> dict[str, object]:
    """The job keys of the run's config.yml; none when it has no config.yml."""
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
    settings = [saved_job_settings(run_dir) for run_dir in run_dirs]
    keys = sorted({key for each in settings for key in each} - _NOT_PARAMETERS)
    varying = [key for key in keys if len({repr(each.get(key)) for each in settings}) > 1]
    labels = []
    for run_dir, each in zip(run_dirs, settings, strict=True):
        parts = [f"{key}={each.get(key)}" for key in varying]
        labels.append(", ".join(parts) if parts else f"{run_dir.parent.name}/{run_dir.name}")
    return labels


def draw_time_to_accuracy(curves: Sequence[RunCurve], *, target: float | None = None) -> Any:
    """A matplotlib figure with top-1 accuracy against rounds (left) and against simulated time (right)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or assumed
    import matplotlib.pyplot as plt

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
    return figure


def plot_time_to_accuracy(run_dirs: Sequence[Path], out: Path, *, target: float | None = None) -> Path:
    """Write a PNG with top-1 accuracy against rounds (left) and against simulated time (right)."""
    if not run_dirs:
        raise ValueError("plot: no run folder given")
    figure = draw_time_to_accuracy(run_curves(run_dirs), target=target)
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
