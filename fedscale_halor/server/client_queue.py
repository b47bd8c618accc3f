"""The work board's queue of the round's clients: who is still to be trained, and how long each took to come back.

Clients are handed out by guided self-scheduling: an asking executor takes ceil(pending / (live executors x chunks
per executor)) of them, so fast executors take more and the load balances without the aggregator knowing their
speeds. The queue notes when each client's task left and when its update came back; the round's outcome reports
both round trips, per client and per executor (from its first task of the round to its latest update).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Sequence

from fedscale_halor.types import TrainTask


class ClientQueue:
    """The current round's tasks still to hand out and their round trips. Not thread-safe: the board calls it under
    its lock. The tasks an executor is training are kept in that executor's own map (``held``), so they leave with it
    when it is declared dead."""

    def __init__(self, chunks_per_executor: int = 1) -> None:
        if chunks_per_executor < 1:
            raise ValueError(f"chunks_per_executor must be at least 1, got {chunks_per_executor}")
        self._chunks_per_executor = chunks_per_executor
        self._round_chunks = chunks_per_executor
        self._pending: deque[TrainTask] = deque()
        self._handed_out_at: dict[int, float] = {}  # client -> when its task left, this round
        self._client_round_trip_s: dict[int, float] = {}
        self._executor_first_task_at: dict[str, float] = {}
        self._executor_round_trip_s: dict[str, float] = {}

    def start(self, tasks: Sequence[TrainTask], chunks_per_executor: int | None = None) -> None:
        """A new round: its tasks, in order; what the last round left, round trips included, is dropped.
        ``chunks_per_executor``: for this round, instead of the queue's own."""
        if chunks_per_executor is not None:
            if chunks_per_executor < 1:
                raise ValueError(f"chunks_per_executor must be at least 1, got {chunks_per_executor}")
            self._round_chunks = chunks_per_executor
        else:
            self._round_chunks = self._chunks_per_executor
        self._pending = deque(tasks)
        self._handed_out_at, self._client_round_trip_s = {}, {}
        self._executor_first_task_at, self._executor_round_trip_s = {}, {}

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def take(self, executor_id: str, held: dict[int, TrainTask], live_executors: int) -> tuple[TrainTask, ...]:
        """The asking executor's share of the pending tasks, now counted among ``held``; empty when none wait."""
        if not self._pending:
            return ()
        share = math.ceil(len(self._pending) / (max(1, live_executors) * self._round_chunks))
        tasks = tuple(self._pending.popleft() for _ in range(share))
        held.update({task.client_id: task for task in tasks})
        now = time.monotonic()
        self._handed_out_at.update((task.client_id, now) for task in tasks)
        self._executor_first_task_at.setdefault(executor_id, now)
        return tasks

    def put_back(self, tasks: Iterable[TrainTask]) -> None:
        """Tasks of an executor declared dead: handed out again, after those still waiting."""
        self._pending.extend(tasks)

    def note_round_trip(self, executor_id: str, client_id: int) -> None:
        """The client's awaited update came back from the executor, now."""
        now = time.monotonic()
        handed_out = self._handed_out_at.get(client_id)
        if handed_out is not None:
            self._client_round_trip_s[client_id] = now - handed_out
        first = self._executor_first_task_at.get(executor_id)
        if first is not None:
            self._executor_round_trip_s[executor_id] = now - first

    def round_trips(self) -> tuple[dict[int, float], dict[str, float]]:
        """Copies of the round trips so far: seconds per client, and seconds per executor."""
        return dict(self._client_round_trip_s), dict(self._executor_round_trip_s)
