"""Per-round progress lines, to the aggregator's logger (its file and, when interactive, the terminal).

A job of one cohort writes ``round 3/4: ...``. Once a job has several cohorts (a cohort other than 0 has logged a
round), every line names its cohort, ``round 3/4 cohort 1: ...``, cohort 0's included, so the lines of one round
tell apart. Cohorts are branched mid-job, so the rounds before the first branch stay unnamed.
"""

from __future__ import annotations

import logging

from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.types import RoundMetrics


def round_heading(metrics: RoundMetrics, total_rounds: int, several_cohorts: bool) -> str:
    cohort = f" cohort {metrics.cohort}" if several_cohorts or metrics.cohort > 0 else ""
    return f"round {metrics.round}/{total_rounds}{cohort}"


class TextSink(MetricsSink):
    def __init__(self, logger: logging.Logger, total_rounds: int) -> None:
        self._log = logger
        self._total_rounds = total_rounds
        self._several_cohorts = False

    def on_round(self, metrics: RoundMetrics) -> None:
        self._several_cohorts = self._several_cohorts or metrics.cohort > 0
        line = (f"{round_heading(metrics, self._total_rounds, self._several_cohorts)}: "
                f"{metrics.completed}/{len(metrics.participants)} "
                f"clients, train loss {metrics.train_loss:.4f}, lr {metrics.learning_rate:.4g}, "
                f"clock {metrics.clock_s:.1f} s, wall {metrics.wall_time_s:.2f} s")
        if metrics.test is not None:
            line += (f" | test top-1 {metrics.test.top1:.4f}, top-5 {metrics.test.top5:.4f}, "
                     f"loss {metrics.test.loss:.4f} on {metrics.test.num_samples} samples")
        self._log.info(line)
