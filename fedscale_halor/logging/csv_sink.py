"""metrics.csv: one row per round, written as it happens so a killed job keeps its history.

In a job of several cohorts each cohort's round is its own row, told apart by ``cohort`` (0 for a job of one
cohort); ``members``, the last column, is how many clients the cohort had when it was evaluated (empty in rounds
without an evaluation), which the overall accuracy of the cohorts is weighted by. Files written before those columns
existed are read as cohort 0's, without member counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.types import RoundMetrics

COLUMNS = (
    "round", "clock_s", "wall_time_s", "participants", "completed", "train_loss", "learning_rate",
    "test_loss", "test_top1", "test_top5", "test_samples", "attempts", "client_round_trip_mean_s",
    "client_round_trip_max_s", "executor_round_trip_max_s", "shortened_clients", "cohort", "members",
)


class CsvSink(MetricsSink):
    def __init__(self, path: Path, keep_rounds_up_to: int | None = None) -> None:
        """``keep_rounds_up_to``: a resumed job keeps the rows of the rounds it does not run again."""
        kept = _rows_up_to(path, keep_rounds_up_to) if keep_rounds_up_to is not None else []
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)
        self._writer.writerows(kept)
        self._file.flush()

    def on_round(self, metrics: RoundMetrics) -> None:
        test = metrics.test
        self._writer.writerow([
            metrics.round, f"{metrics.clock_s:.4f}", f"{metrics.wall_time_s:.4f}", len(metrics.participants),
            metrics.completed, f"{metrics.train_loss:.6f}", f"{metrics.learning_rate:.6g}",
            "" if test is None else f"{test.loss:.6f}",
            "" if test is None else f"{test.top1:.6f}",
            "" if test is None else f"{test.top5:.6f}",
            "" if test is None else test.num_samples,
            metrics.attempts,
            *_round_trips(metrics),
            len(metrics.shortened_local_steps),
            metrics.cohort,
            "" if test is None else metrics.members,
        ])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _round_trips(metrics: RoundMetrics) -> list[str]:
    """Mean and slowest client round trip, slowest executor's; empty when nobody reported."""
    clients = list(metrics.client_round_trip_s.values())
    executors = list(metrics.executor_round_trip_s.values())
    return ["" if not clients else f"{sum(clients) / len(clients):.4f}",
            "" if not clients else f"{max(clients):.4f}",
            "" if not executors else f"{max(executors):.4f}"]


def _rows_up_to(path: Path, last_round: int) -> list[list[str]]:
    """Every cohort's rows of the rounds up to ``last_round``, in today's columns: an older file's rows get the
    columns it lacked, empty (so no member count), and cohort 0."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    header, kept = rows[0], []
    for row in rows[1:]:
        if not (row and row[0].isdigit() and int(row[0]) <= last_round):
            continue
        cells = dict(zip(header, row, strict=False))
        cells["cohort"] = cells.get("cohort") or "0"
        kept.append([cells.get(column, "") for column in COLUMNS])
    return kept
