"""The per-round scalars every dashboard shows, named the same in TensorBoard and WandB.

In a job of several cohorts every round's metrics belong to one cohort (each cohort trains its own model on its own
clock, participants and clients), so every scalar is that cohort's: cohort 0 keeps the plain names, which a job of
one cohort has always used, and cohort c > 0 logs the same names under ``cohort_<c>/`` (``cohort_1/train/loss``).
"""

from __future__ import annotations

import math

from fedscale_halor.types import RoundMetrics


def cohort_name(name: str, cohort: int) -> str:
    """``name`` as cohort ``cohort`` logs it: unchanged for cohort 0, under ``cohort_<c>/`` for the others."""
    return name if cohort == 0 else f"cohort_{cohort}/{name}"


class CohortClocks:
    """The simulated clock at each cohort's last logged round, so a round's duration is taken on its own cohort's
    clock (two cohorts' clocks run apart).

    Cohort 0 starts at 0 s, as the job does. A cohort c > 0 is branched off another cohort mid-job and starts at its
    parent's clock, which its metrics do not name: its first logged round has no known start, so no duration."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {0: 0.0}

    def previous(self, cohort: int) -> float | None:
        return self._last.get(cohort)

    def update(self, metrics: RoundMetrics) -> None:
        self._last[metrics.cohort] = metrics.clock_s


def round_scalars(metrics: RoundMetrics, previous_clock_s: float | None) -> dict[str, float]:
    """Training and round statistics of one round, by their cohort-0 names; non-finite values (no client finished:
    no train loss) are left out rather than drawn as gaps or spikes, and so is the duration when
    ``previous_clock_s`` (the cohort's clock at its previous round) is unknown."""
    scalars = {
        "train/loss": metrics.train_loss,
        "train/learning_rate": metrics.learning_rate,
        "round/participants": float(len(metrics.participants)),
        "round/completed": float(metrics.completed),
        "round/not_completed": float(len(metrics.participants) - metrics.completed),
        "round/dropouts": float(metrics.dropouts),
        "round/stragglers": float(metrics.stragglers),
        "round/duration_s": math.nan if previous_clock_s is None else metrics.clock_s - previous_clock_s,
        "round/clock_s": metrics.clock_s,
        "round/wall_time_s": metrics.wall_time_s,
        "round/attempts": float(metrics.attempts),
        "round/shortened_clients": float(len(metrics.shortened_local_steps)),
    }
    trips = list(metrics.client_round_trip_s.values())
    if trips:
        scalars["round_trip/client_mean_s"] = sum(trips) / len(trips)
        scalars["round_trip/client_max_s"] = max(trips)
    for executor, seconds in sorted(metrics.executor_round_trip_s.items()):
        scalars[f"round_trip/{executor}_s"] = seconds
    return {tag: value for tag, value in scalars.items() if math.isfinite(value)}
