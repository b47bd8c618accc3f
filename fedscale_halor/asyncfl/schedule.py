"""Asynchronous buffered aggregation on the virtual clock (FedBuff, as FedScale's async aggregator runs it): pure
scheduling and weighting, with no I/O.

Clients train concurrently, up to ``max_concurrency`` at once: a new client starts whenever one starts while there
is still room, and whenever one ends. Each client trains on the model version that is current when it starts and
reports when it ends (start + its round time). The server collects ends in time order; an update more than
``max_staleness`` versions old is dropped, and once ``buffer_size`` updates are collected the server aggregates
them (``staleness_weights``) into the next version, at the time of the last collected end.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AsyncTask:
    client_id: int
    version: int  # the model version the client trains on: the current one when it starts
    start_s: float
    end_s: float


@dataclass(frozen=True)
class BufferStep:
    """One aggregation: the updates it folds (in the order they arrived), those dropped as too stale on the way,
    and when it happens."""

    version: int  # the version the updates are folded into (the new model is version + 1)
    collected: tuple[AsyncTask, ...]
    dropped: tuple[AsyncTask, ...]
    time_s: float

    def staleness(self, task: AsyncTask) -> int:
        return self.version - task.version


_START, _END = 0, 1  # at equal times, a start is handled before an end, as FedScale's (time, 'start' < 'end') heap


class AsyncSchedule:
    """``next_client(time_s)`` picks the client that starts at ``time_s``; ``duration_s(client)`` is how long it
    takes to train and report (the device trace's round time)."""

    def __init__(self, next_client: Callable[[float], int], duration_s: Callable[[int], float], *,
                 max_concurrency: int, buffer_size: int, max_staleness: int) -> None:
        if max_concurrency < 1 or buffer_size < 1 or max_staleness < 0:
            raise ValueError(f"max_concurrency and buffer_size must be at least 1 and max_staleness at least 0, got "
                             f"{max_concurrency}, {buffer_size} and {max_staleness}")
        self._next_client = next_client
        self._duration_s = duration_s
        self._max_concurrency = max_concurrency
        self._buffer_size = buffer_size
        self._max_staleness = max_staleness
        self._events: list[tuple[float, int, int, AsyncTask]] = []  # (time, kind, order, task)
        self._order = 0
        self._running = 0
        self.now_s = 0.0

    def _start_task(self, time_s: float, version: int) -> AsyncTask:
        client = self._next_client(time_s)
        task = AsyncTask(client, version, time_s, time_s + self._duration_s(client))
        for when, kind in ((task.start_s, _START), (task.end_s, _END)):
            heapq.heappush(self._events, (when, kind, self._order, task))
            self._order += 1
        return task

    def next_step(self, version: int) -> tuple[BufferStep, tuple[AsyncTask, ...]]:
        """The aggregation into ``version``, and the tasks started while collecting it (they train on
        ``version``, the model current at their start)."""
        started: list[AsyncTask] = []
        if not self._events:
            started.append(self._start_task(self.now_s, version))
        collected: list[AsyncTask] = []
        dropped: list[AsyncTask] = []
        time_s = self.now_s
        while len(collected) < self._buffer_size:
            time_s, kind, _, task = heapq.heappop(self._events)
            if kind == _START:
                self._running += 1
                if self._running < self._max_concurrency:
                    started.append(self._start_task(time_s, version))
                continue
            self._running -= 1
            if self._running == self._max_concurrency - 1:
                started.append(self._start_task(time_s, version))
            (collected if version - task.version <= self._max_staleness else dropped).append(task)
        self.now_s = time_s
        return BufferStep(version, tuple(collected), tuple(dropped), time_s), tuple(started)


def staleness_weights(staleness: Sequence[int]) -> tuple[float, ...]:
    """Each collected update's share of the aggregate: 1 / (1 + staleness), normalized over the buffer."""
    if any(value < 0 for value in staleness):
        raise ValueError(f"staleness must not be negative, got {list(staleness)}")
    raw = [1.0 / (1 + value) for value in staleness]
    total = sum(raw)
    return tuple(value / total for value in raw)
