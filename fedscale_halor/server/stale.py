"""Stragglers' updates kept for later rounds (SAFA / REFL): held until they arrive on the virtual clock, then folded
into the round they reach with a weight that depends on how late they are."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fedscale_halor.aggregation.staleness import REFL_SCALING, StalePolicy, UpdateInfo, refl_deviation, stale_weights
from fedscale_halor.types import TrainResult, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class PendingUpdate:
    result: TrainResult
    trained_round: int
    arrives_at_s: float  # on the virtual clock


class StaleUpdates:
    """The updates of stragglers, until they arrive (and are accepted) or grow too late."""

    def __init__(self, policy: StalePolicy) -> None:
        self.policy = policy
        self._pending: list[PendingUpdate] = []

    @property
    def enabled(self) -> bool:
        return self.policy.stale_update != 0

    def hold(self, result: TrainResult, trained_round: int, arrives_at_s: float) -> None:
        self._pending.append(PendingUpdate(result, trained_round, arrives_at_s))

    def arriving_within(self, next_round: int, now_s: float, window_s: float) -> int:
        """How many held updates will arrive within ``window_s`` from now and still count in ``next_round``."""
        return sum(1 for pending in self._pending
                   if pending.arrives_at_s <= now_s + window_s and next_round - pending.trained_round >= 1
                   and self.policy.accepts(next_round - pending.trained_round))

    def due(self, round_index: int, round_end_s: float) -> list[PendingUpdate]:
        """Updates that arrived by the end of ``round_index`` and are not too late for it, in client-id order (so
        that sums do not depend on arrival order); updates too late for any later round are dropped."""
        arrived, waiting = [], []
        for pending in self._pending:
            staleness = round_index - pending.trained_round
            if staleness < 1:
                waiting.append(pending)
            elif not self.policy.accepts(staleness):
                _log.info("round %d: the update of client %d from round %d is %d rounds late; dropped", round_index,
                          pending.result.client_id, pending.trained_round, staleness)
            elif pending.arrives_at_s <= round_end_s:
                arrived.append(pending)
            else:
                waiting.append(pending)
        self._pending = waiting
        return sorted(arrived, key=lambda pending: (pending.result.client_id, pending.trained_round))

    def weights(self, round_index: int, due: Sequence[PendingUpdate], fresh_client_ids: Sequence[int],
                fresh_mean: Weights | None) -> tuple[float, ...]:
        """Each due update's multiplicative weight against the round's fresh updates (``stale_factor``)."""
        deviations: list[float | None] = [None] * len(due)
        if self.policy.stale_factor == REFL_SCALING and fresh_mean is not None:
            deviations = [refl_deviation(pending.result.weights, fresh_mean) for pending in due]
        stale = [UpdateInfo(pending.result.client_id, round_index - pending.trained_round, deviation)
                 for pending, deviation in zip(due, deviations, strict=True)]
        fresh = [UpdateInfo(client) for client in fresh_client_ids]
        return stale_weights(self.policy, fresh, stale).stale
