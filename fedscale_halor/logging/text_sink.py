"""Per-round progress lines, to the aggregator's logger (its file and, when interactive, the terminal)."""

from __future__ import annotations

import logging

from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.types import RoundMetrics


class TextSink(MetricsSink):
    def __init__(self, logger: logging.Logger, total_rounds: int) -> None:
        self._log = logger
        self._total_rounds = total_rounds

    def on_round(self, metrics: RoundMetrics) -> None:
        line = (f"round {metrics.round}/{self._total_rounds}: {metrics.completed}/{len(metrics.participants)} "
                f"clients, train loss {metrics.train_loss:.4f}, lr {metrics.learning_rate:.4g}, "
                f"clock {metrics.clock_s:.1f} s, wall {metrics.wall_time_s:.2f} s")
        if metrics.test is not None:
            line += (f" | test top-1 {metrics.test.top1:.4f}, top-5 {metrics.test.top5:.4f}, "
                     f"loss {metrics.test.loss:.4f} on {metrics.test.num_samples} samples")
        self._log.info(line)
