"""The round's planning stage: who may be selected, how many, and who completes the round on the clock.

``EveryoneCompletes`` is the plan of a job without device traces: every selected client completes, and the clock
moves by the slowest client's wall time. ``TracedClock`` runs FedScale's virtual clock (simulation/clock.py):
availability decides who may be selected, the device trace who completes, straggles or drops out, and straggler
balancing may shorten the local steps of clients predicted to miss the deadline.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from fedscale_halor.selection.base import ClientColumns, ClientIds
from fedscale_halor.simulation.clock import VirtualClock
from fedscale_halor.simulation.plan import RoundPlan
from fedscale_halor.types import TrainResult

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class PlannedRound:
    """``completing``: the clients whose updates make the round, ascending; ``stragglers``: those that finish after
    the cut, with their finishing times (seconds after the round's start); ``sampled``: every selected client."""

    completing: tuple[int, ...]
    sampled: tuple[int, ...]
    stragglers: Mapping[int, float] = field(default_factory=dict)
    dropped: tuple[int, ...] = ()
    local_steps: Mapping[int, int] = field(default_factory=dict)  # clients that train other than the job's steps
    plan: RoundPlan | None = None  # the virtual clock's plan, when there is a clock


class RoundPlanner(ABC):
    """Also the clock that plug-ins read (``plugin.round.Clock``)."""

    now_s: float = 0.0

    @abstractmethod
    def selection_size(self) -> int:
        """How many clients a round selects."""

    @abstractmethod
    def feasible(self, client_ids: ClientIds) -> ClientIds:
        """The clients that may be selected now (``client_ids``: an ascending int64 array, or a sequence)."""

    @abstractmethod
    def plan(self, round_index: int, selected: Sequence[int], failed: AbstractSet[int] = frozenset()) -> PlannedRound:
        """``failed``: clients that failed in an earlier attempt of the round (selection already leaves them out;
        a planner that trains clients it did not just select must leave them out too)."""

    @abstractmethod
    def duration_s(self, planned: PlannedRound, result: TrainResult) -> float:
        """How long ``result``'s client took, as the selector hears it."""

    def completed(self, planned: PlannedRound, result: TrainResult) -> bool:
        """Whether ``result``'s client completed, as the selector hears it (a straggler trained anyway did not)."""
        return result.client_id in planned.completing

    @abstractmethod
    def advance(self, planned: PlannedRound, results: Sequence[TrainResult]) -> float:
        """Move the clock past the round; returns the new time."""

    def expected_round_s(self) -> float:
        return 0.0

    @abstractmethod
    def client_columns(self, client_ids: np.ndarray, num_samples: np.ndarray) -> ClientColumns:
        """What selectors may know of each client before the first round."""

    def restore(self, now_s: float) -> None:
        self.now_s = now_s

    def set_participants(self, count: int) -> None:
        """How many clients a round aims for: a cohort's share of the job's participants."""
        raise NotImplementedError(f"{type(self).__name__} cannot plan a cohort's share of the participants")


class EveryoneCompletes(RoundPlanner):
    def __init__(self, num_participants: int) -> None:
        self._num_participants = num_participants
        self.now_s = 0.0

    def selection_size(self) -> int:
        return self._num_participants

    def set_participants(self, count: int) -> None:
        self._num_participants = count

    def feasible(self, client_ids: ClientIds) -> ClientIds:
        return client_ids

    def plan(self, round_index: int, selected: Sequence[int], failed: AbstractSet[int] = frozenset()) -> PlannedRound:
        chosen = tuple(sorted(selected))
        return PlannedRound(completing=chosen, sampled=chosen)

    def duration_s(self, planned: PlannedRound, result: TrainResult) -> float:
        return result.wall_time_s

    def advance(self, planned: PlannedRound, results: Sequence[TrainResult]) -> float:
        # no traces: the round lasts as long as its slowest client
        self.now_s += max((result.wall_time_s for result in results), default=0.0)
        return self.now_s

    def client_columns(self, client_ids: np.ndarray, num_samples: np.ndarray) -> ClientColumns:
        return ClientColumns(client_ids, num_samples)


class TracedClock(RoundPlanner):
    def __init__(self, clock: VirtualClock, num_participants: int, overcommitment: float, local_steps: int,
                 straggler_balancing: bool = False, min_local_steps: int = 1) -> None:
        self._clock = clock
        self._num_participants = num_participants
        self._overcommitment = overcommitment
        self._local_steps = local_steps
        self._balancing = straggler_balancing
        self._min_local_steps = min_local_steps

    @property  # type: ignore[override]
    def now_s(self) -> float:
        return self._clock.now_s

    @property
    def clock(self) -> VirtualClock:
        return self._clock

    def restore(self, now_s: float) -> None:
        self._clock.now_s = now_s

    def selection_size(self) -> int:
        return self._clock.selection_size(self._num_participants, self._overcommitment)

    def set_participants(self, count: int) -> None:
        self._num_participants = count
        self._clock.set_participants(count)

    def feasible(self, client_ids: ClientIds) -> ClientIds:
        return self._clock.feasible(client_ids)

    def plan(self, round_index: int, selected: Sequence[int], failed: AbstractSet[int] = frozenset()) -> PlannedRound:
        local_steps = self._clock.balanced_local_steps(selected, self._min_local_steps) if self._balancing else {}
        if local_steps:
            _log.info("round %d: straggler balancing shortens %d clients: %s", round_index, len(local_steps),
                      ", ".join(f"{client} ({self._local_steps} -> {steps} steps)"
                                for client, steps in sorted(local_steps.items())))
        plan = self._clock.plan(round_index, selected, local_steps)
        # every selected client: who will straggle or drop out is not known to the clients before training
        sampled = sorted({*plan.completed, *(client for client, _ in plan.stragglers), *plan.dropped})
        return PlannedRound(completing=tuple(sorted(plan.completed)), sampled=tuple(sampled),
                            stragglers=dict(plan.stragglers), dropped=plan.dropped, local_steps=local_steps,
                            plan=plan)

    def duration_s(self, planned: PlannedRound, result: TrainResult) -> float:
        assert planned.plan is not None
        return planned.plan.finish_s[result.client_id]

    def advance(self, planned: PlannedRound, results: Sequence[TrainResult]) -> float:
        assert planned.plan is not None
        self._clock.advance(planned.plan)
        return self._clock.now_s

    def expected_round_s(self) -> float:
        return self._clock.expected_round_s()

    def client_columns(self, client_ids: np.ndarray, num_samples: np.ndarray) -> ClientColumns:
        return self._clock.client_columns(client_ids, num_samples)
