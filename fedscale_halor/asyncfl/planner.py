"""The planning stage of an asynchronous job: each round of the loop is one aggregation step of the schedule.

A round checks new clients in (when few tasks are pending), finds the step that publishes the next model version,
and trains every task that starts before that step on the current model. Nothing changes until ``advance``: a
retried attempt of the round plans again from the same committed schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from fedscale_halor.asyncfl.schedule import AsyncRules, AsyncSchedule, AsyncTask, BufferStep, CheckIn
from fedscale_halor.selection.base import ClientColumns, ClientIds
from fedscale_halor.server.planning import PlannedRound, RoundPlanner
from fedscale_halor.simulation.clock import VirtualClock
from fedscale_halor.types import TrainResult

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class AsyncRound:
    """What a planned round does to the schedule: its check-ins, its step, and the tasks it trains."""

    schedule: AsyncSchedule  # the schedule after the check-ins, before the step is published
    check_in: CheckIn
    step: BufferStep
    trained: tuple[AsyncTask, ...]


class AsyncPlanner(RoundPlanner):
    def __init__(self, clock: VirtualClock, rules: AsyncRules, overcommitment: float) -> None:
        self._clock = clock
        self._overcommitment = overcommitment
        self.schedule = AsyncSchedule(rules)
        self.planned: AsyncRound | None = None
        self.committed: AsyncRound | None = None

    @property  # type: ignore[override]
    def now_s(self) -> float:
        return self.schedule.now_s

    def restore(self, now_s: float) -> None:
        if abs(now_s - self.schedule.now_s) > 1e-6:
            raise ValueError(f"the checkpoint's clock ({now_s} s) and its asynchronous schedule "
                             f"({self.schedule.now_s} s) disagree")
        self._clock.now_s = self.schedule.now_s

    def selection_size(self) -> int:
        return self.schedule.refill_size(self._overcommitment)

    def feasible(self, client_ids: ClientIds) -> ClientIds:
        """The clients online now that have no task pending."""
        busy = self.schedule.busy_clients()
        return [client for client in self._clock.feasible(client_ids) if client not in busy]

    def plan(self, round_index: int, selected: Sequence[int], failed: AbstractSet[int] = frozenset()) -> PlannedRound:
        """``failed``: their pending tasks are given up (they failed in an earlier attempt of this round)."""
        schedule = self.schedule.copy()
        schedule.pending = [task for task in schedule.pending if task.client_id not in failed]
        check_in = schedule.check_in(selected, self._clock.round_seconds, self._clock.is_online)
        step = schedule.next_step()
        trained = schedule.trained_in(step)
        self.planned = AsyncRound(schedule, check_in, step, trained)
        if check_in.skipped_busy or check_in.skipped_offline:
            _log.info("round %d: %d clients checked in; skipped %d at max_concurrency and %d offline at their end",
                      round_index, len(check_in.started), len(check_in.skipped_busy), len(check_in.skipped_offline))
        clients = tuple(sorted(task.client_id for task in trained))
        return PlannedRound(completing=(), sampled=clients, dropped=check_in.skipped_offline)

    def train_now(self) -> Mapping[int, float]:
        """The planned round's tasks to train: client -> seconds after the round's start that it reports."""
        assert self.planned is not None
        start = self.schedule.now_s
        return {task.client_id: task.end_s - start for task in self.planned.trained}

    def duration_s(self, planned: PlannedRound, result: TrainResult) -> float:
        """From check-in to report, for the tasks of the round being committed (the selector hears it after
        ``advance``)."""
        current = self.planned or self.committed
        assert current is not None
        return next(task.duration_s for task in current.trained if task.client_id == result.client_id)

    def completed(self, planned: PlannedRound, result: TrainResult) -> bool:
        """Every trained task reports in full, only later (FedScale's async aggregator feeds each back as a
        success)."""
        return True

    def advance(self, planned: PlannedRound, results: Sequence[TrainResult]) -> float:
        assert self.planned is not None
        self.committed, self.planned = self.planned, None
        self.schedule = self.committed.schedule
        self.schedule.publish(self.committed.step)
        self._clock.now_s = self.schedule.now_s
        return self.schedule.now_s

    def expected_round_s(self) -> float:
        published = self.schedule.published_s
        return (published[-1] - published[0]) / (len(published) - 1) if len(published) > 1 else 0.0

    def client_columns(self, client_ids: np.ndarray, num_samples: np.ndarray) -> ClientColumns:
        return self._clock.client_columns(client_ids, num_samples)
