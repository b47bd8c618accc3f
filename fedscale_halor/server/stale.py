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
from fedscale_halor.settings import knob
from fedscale_halor.types import TrainResult, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class StaleConfig:
    """The job-file keys of stale updates and of REFL's adaptive selection (the plug-in's settings)."""

    stale_update: int = knob(0, "stragglers' updates kept for later rounds (SAFA, REFL): 0 dropped, -1 whenever "
                                "they arrive, n at most n rounds late", range=(-1, None))
    stale_factor: float = knob(1.0, "weight of a stale update: 1 as a fresh one, f > 1 divided by f, -1 by the "
                                    "round's mean staleness + 1, -2 AdaSGD, -3 DynSGD, -4 REFL's scaling")
    stale_beta: float = knob(0.35, "REFL's scaling (stale_factor -4): share of the deviation boost", range=(0.0, 1.0))
    scale_coff: float = knob(10.0, "REFL's scaling (stale_factor -4): divisor of the deviation boost",
                             range=(1.0, None))

    adapt_selection: int = knob(0, "REFL's adaptive selection: select fewer new clients by the stale updates due "
                                   "next round (1 down to adapt_selection_cap of the target, 2 none); 0 off",
                                choices=(0, 1, 2))
    adapt_selection_cap: float = knob(0.5, "REFL's adaptive selection: the share of the target always selected "
                                           "(0: at least one client)", range=(0.0, 1.0))


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
    settings = StaleConfig

    def enabled(self, job: JobConfig) -> bool:
        return job.plugin_settings.get(StaleConfig).stale_update != 0 and bool(job.device_conf_file)

    def switched_on_by(self, job: JobConfig) -> str:
        return "stale_update"

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin:
        keys = job.plugin_settings.get(StaleConfig)
        adaptive = AdaptiveParticipantTarget(keys.adapt_selection, keys.adapt_selection_cap) \
            if keys.adapt_selection else None
        return StaleUpdatesPlugin(StalePolicy(keys.stale_update, keys.stale_factor, keys.stale_beta, keys.scale_coff),
                                  adaptive)
