"""Stragglers' updates kept for later rounds (SAFA / REFL): held until they arrive on the virtual clock, then folded
into the round they reach with a weight that depends on how late they are."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedscale_halor.aggregation.staleness import REFL_SCALING, StalePolicy, UpdateInfo, refl_deviation, stale_weights
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.plugin.factory import PluginFactory, ServerSide
from fedscale_halor.plugin.round import Clock, Fold, RoundPlugin
from fedscale_halor.selection.availability_selector import AdaptiveParticipantTarget
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


class StaleUpdatesPlugin(RoundPlugin):
    """Stale updates as a plug-in of the round (SAFA / REFL): the round's stragglers train anyway, their updates are
    held until they arrive on the virtual clock and are folded into the round they reach; with REFL's adaptive
    selection, a round selects fewer new clients by the held updates due in it."""

    def __init__(self, policy: StalePolicy, adaptive: AdaptiveParticipantTarget | None = None) -> None:
        self._stale = StaleUpdates(policy)
        self._adaptive = adaptive

    def selection_size(self, round_index: int, count: int, clock: Clock) -> int:
        if self._adaptive is None:
            return count
        arriving = self._stale.arriving_within(round_index, clock.now_s, clock.expected_round_s())
        return self._adaptive.target(count, arriving)

    def late_clients(self, round_index: int, stragglers: Mapping[int, float]) -> Mapping[int, float]:
        return dict(stragglers)

    def take_late(self, round_index: int, results: Sequence[TrainResult], round_start_s: float,
                  finish_after_start_s: Mapping[int, float]) -> None:
        for result in results:
            self._stale.hold(result, round_index, round_start_s + finish_after_start_s[result.client_id])

    def fold_more(self, round_index: int, fold: Fold, fresh_client_ids: Sequence[int], clock_s: float) -> None:
        due = self._stale.due(round_index, clock_s)
        if not due:
            return
        weights = self._stale.weights(round_index, due, fresh_client_ids, fold.fresh_mean())
        for pending, weight in zip(due, weights, strict=True):
            fold.add_stale(pending.result, weight)
        _log.info("round %d: %d stale updates folded in (clients %s)", round_index, len(due),
                  ", ".join(str(pending.result.client_id) for pending in due))


class StaleUpdatesFactory(PluginFactory):
    """Built in: on with ``stale_update`` and a device trace (without a virtual clock no client straggles)."""

    name = "stale_updates"

    def enabled(self, job: JobConfig) -> bool:
        return job.stale_update != 0 and bool(job.device_conf_file)

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin:
        adaptive = AdaptiveParticipantTarget(job.adapt_selection, job.adapt_selection_cap) if job.adapt_selection \
            else None
        return StaleUpdatesPlugin(StalePolicy(job.stale_update, job.stale_factor, job.stale_beta, job.scale_coff),
                                  adaptive)
