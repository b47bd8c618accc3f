"""Asynchronous buffered aggregation on the virtual clock (FedBuff, as FedScale's async aggregator runs it): pure
scheduling and weighting, with no I/O.

Clients check in one every ``arrival_interval_s``. A client that checks in at ``start`` trains on the newest model
version published at or before ``start`` and reports at ``end = start + its round time``; it is skipped when
``max_concurrency`` tasks are already running at ``start``, or when it is offline at ``end``. Each aggregation
collects the next ``buffer_size`` reports in end-time order, drops those more than ``max_staleness`` versions old on
the way (and collects the next one instead), and publishes the new version at the time of the last collected end.

Where FedScale differs (docs/asynchronous.md): its check-ins of each selection batch restart from the clock rather
than continuing after the previous batch, it counts concurrency within a batch only and lets ``max_concurrency + 1``
tasks run, and it lets a client with a pending task check in again.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

# how far the clock moves when a step has nothing to collect (as simulation/clock.py's idle step)
IDLE_STEP_S = 60.0


@dataclass(frozen=True)
class AsyncRules:
    arrival_interval_s: float
    buffer_size: int
    max_concurrency: int
    max_staleness: int

    def __post_init__(self) -> None:
        if self.buffer_size < 1 or self.max_concurrency < 1 or self.max_staleness < 0 or self.arrival_interval_s < 0:
            raise ValueError(f"async_buffer and max_concurrency must be at least 1, max_staleness and "
                             f"arrival_interval at least 0; got {self.buffer_size}, {self.max_concurrency}, "
                             f"{self.max_staleness} and {self.arrival_interval_s}")


@dataclass(frozen=True)
class AsyncTask:
    client_id: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class CheckIn:
    started: tuple[AsyncTask, ...]
    skipped_busy: tuple[int, ...]  # max_concurrency tasks were running at the client's check-in
    skipped_offline: tuple[int, ...]  # the client is offline when it would report


@dataclass(frozen=True)
class BufferStep:
    """One aggregation into ``version + 1``: the updates it folds (in end-time order, with their staleness), those
    dropped as too stale on the way, and when the new version is published."""

    version: int
    collected: tuple[AsyncTask, ...]
    staleness: tuple[int, ...]
    dropped: tuple[AsyncTask, ...]
    time_s: float


@dataclass
class AsyncSchedule:
    """The tasks checked in and not yet collected, and when each model version was published (version 0 at 0)."""

    rules: AsyncRules
    pending: list[AsyncTask] = field(default_factory=list)
    last_check_in_s: float = 0.0
    published_s: list[float] = field(default_factory=lambda: [0.0])

    def copy(self) -> AsyncSchedule:
        return replace(self, pending=list(self.pending), published_s=list(self.published_s))

    @property
    def version(self) -> int:
        return len(self.published_s) - 1

    @property
    def now_s(self) -> float:
        return self.published_s[-1]

    def version_at(self, time_s: float) -> int:
        """The newest version published at or before ``time_s``."""
        return bisect.bisect_right(self.published_s, time_s) - 1

    def wants_clients(self) -> bool:
        """FedScale's refill rule: new clients check in while fewer than five buffers of tasks are pending."""
        return len(self.pending) < 5 * self.rules.buffer_size

    def refill_size(self, overcommitment: float) -> int:
        return math.ceil(10 * self.rules.buffer_size * overcommitment) if self.wants_clients() else 0

    def busy_clients(self) -> set[int]:
        return {task.client_id for task in self.pending}

    def running_at(self, time_s: float) -> int:
        return sum(1 for task in self.pending if task.start_s <= time_s < task.end_s)

    def check_in(self, clients: Sequence[int], duration_s: Callable[[int], float],
                 online_at: Callable[[int, float], bool]) -> CheckIn:
        """Check ``clients`` in, in order, one arrival interval apart, continuing after the last check-in."""
        started: list[AsyncTask] = []
        busy: list[int] = []
        offline: list[int] = []
        for client in clients:
            start = max(self.last_check_in_s, self.now_s) + self.rules.arrival_interval_s
            self.last_check_in_s = start
            end = start + duration_s(client)
            if self.running_at(start) >= self.rules.max_concurrency:
                busy.append(client)
            elif not online_at(client, end):
                offline.append(client)
            else:
                task = AsyncTask(client, start, end)
                self.pending.append(task)
                started.append(task)
        return CheckIn(tuple(started), tuple(busy), tuple(offline))

    def next_step(self) -> BufferStep:
        """The aggregation into the next version (not yet published: see ``publish``)."""
        version = self.version
        collected: list[AsyncTask] = []
        staleness: list[int] = []
        dropped: list[AsyncTask] = []
        for task in sorted(self.pending, key=lambda task: (task.end_s, task.client_id)):
            if len(collected) == self.rules.buffer_size:
                break
            stale = version - self.version_at(task.start_s)
            if stale > self.rules.max_staleness:
                dropped.append(task)
            else:
                collected.append(task)
                staleness.append(stale)
        time_s = collected[-1].end_s if collected else self.now_s + IDLE_STEP_S
        return BufferStep(version, tuple(collected), tuple(staleness), tuple(dropped), time_s)

    def trained_in(self, step: BufferStep) -> tuple[AsyncTask, ...]:
        """The pending tasks that train on the current version: those that start before ``step`` publishes the
        next one (the earlier ones trained on earlier versions)."""
        return tuple(task for task in self.pending if self.now_s <= task.start_s < step.time_s)

    def publish(self, step: BufferStep) -> None:
        done = {*step.collected, *step.dropped}
        self.pending = [task for task in self.pending if task not in done]
        self.published_s.append(max(step.time_s, self.now_s))


def staleness_importance(staleness: int) -> float:
    """An update's importance in its buffer: 1 / sqrt(1 + staleness), as FedScale's async aggregator (PAPAYA)."""
    if staleness < 0:
        raise ValueError(f"staleness must not be negative, got {staleness}")
    return 1.0 / math.sqrt(1 + staleness)
