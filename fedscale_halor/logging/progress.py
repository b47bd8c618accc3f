"""A progress bar over the job's rounds, on a terminal only.

Off a terminal (a log file, a pipe, a batch system) the sink does nothing: the TextSink's plain lines already tell
the progress there, and a bar's carriage returns would only clutter the file.

In a job of several cohorts the bar still counts the job's rounds; once a cohort other than 0 has logged, its text
also names the cohort whose round it last showed (``cohort=1``), with that cohort's latest accuracy.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.types import RoundMetrics


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_FALLBACK_COLUMNS, _FALLBACK_ROWS = 100, 24


def _reported_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's stream) or not a terminal
        return 0


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers that print ``logger``'s records to a stream other than a file, its ancestors' included."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += [handler for handler in current.handlers
                     if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)]
        current = current.parent if current.propagate else None
    return handlers


class _ClearBar(logging.Filter):
    """Wipes the bar before a log line is printed, so the line does not start after the bar's text; the bar comes
    back below the lines at the end of the round."""

    def __init__(self, bar: Any) -> None:
        super().__init__()
        self._bar = bar

    def filter(self, record: logging.LogRecord) -> bool:
        self._bar.clear()
        return True


class ProgressSink(MetricsSink):
    def __init__(self, total_rounds: int, *, rounds_done: int = 0, stream: TextIO | None = None,
                 is_terminal: Callable[[TextIO], bool] = _is_terminal, logger: logging.Logger | None = None) -> None:
        """``rounds_done``: where a resumed job starts; ``stream`` defaults to stderr, looked up now so that a
        replaced sys.stderr (tests, notebooks) is honoured; ``is_terminal`` decides whether a bar is drawn;
        ``logger``: the job's logger, whose lines printed to the terminal clear the bar first."""
        target = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._done = rounds_done
        self._top1: dict[int, float] = {}  # each cohort's latest evaluation
        self._several_cohorts = False
        self._filtered: list[logging.Handler] = []
        if not is_terminal(target):
            return
        # imported here: only an interactive run draws a bar
        from tqdm import tqdm

        # a terminal that reports no size (a bare pty, some CI runners) would get a bar of width 0 that tqdm also
        # hides as off-screen: nothing at all
        width = {} if _reported_width(target) else {"ncols": _FALLBACK_COLUMNS, "nrows": _FALLBACK_ROWS}
        self._bar = tqdm(total=total_rounds, initial=rounds_done, file=target, unit="round",
                         dynamic_ncols=not width, desc="rounds", mininterval=0,  # a round takes seconds: draw each
                         **width)
        self._filter = _ClearBar(self._bar)
        self._filtered = _console_handlers(logger) if logger is not None else []
        for handler in self._filtered:
            handler.addFilter(self._filter)

    @property
    def active(self) -> bool:
        return self._bar is not None

    def on_round(self, metrics: RoundMetrics) -> None:
        if self._bar is None:
            return
        if metrics.test is not None:
            self._top1[metrics.cohort] = metrics.test.top1
        self._several_cohorts = self._several_cohorts or metrics.cohort > 0
        # the accuracy shown is the cohort's latest evaluation's: rounds between evaluations keep it
        top1 = self._top1.get(metrics.cohort, math.nan)
        postfix = {"cohort": str(metrics.cohort)} if self._several_cohorts else {}
        postfix.update({"top1": "-" if math.isnan(top1) else f"{top1:.4f}",
                        "loss": f"{metrics.train_loss:.4f}", "clock": f"{metrics.clock_s:.0f}s"})
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(max(0, metrics.round - self._done))
        self._done = max(self._done, metrics.round)

    def close(self) -> None:
        for handler in self._filtered:
            handler.removeFilter(self._filter)
        self._filtered = []
        if self._bar is not None:
            self._bar.close()
            self._bar = None
