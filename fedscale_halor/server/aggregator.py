"""The round loop of the parameter server: select, train, aggregate, evaluate, log, checkpoint.

It talks to executors only through the work board (and so through whichever transport serves the board).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.aggregation.staleness import StalePolicy
from fedscale_halor.client.schedule import learning_rate_at
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.seeding import derive_seed
from fedscale_halor.selection.availability_selector import AdaptiveParticipantTarget
from fedscale_halor.selection.base import ClientInfo, ClientOutcome, ClientSelector
from fedscale_halor.server.board import RoundOutcome, WorkBoard
from fedscale_halor.server.checkpoint import (
    CheckpointState,
    load_checkpoint,
    load_halor_sizes,
    load_halor_window,
    load_strategy_state,
    save_checkpoint,
)
from fedscale_halor.server.errors import NoExecutorsError
from fedscale_halor.server.halor_step import HalorCoordinator
from fedscale_halor.server.stale import StaleUpdates
from fedscale_halor.simulation.clock import VirtualClock
from fedscale_halor.simulation.plan import RoundPlan
from fedscale_halor.types import EvalResult, RoundMetrics, TrainResult, TrainTask, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class AggregatorParts:
    """Everything the round loop needs besides the job config."""

    board: WorkBoard
    client_ids: Sequence[int]
    initial_weights: Weights
    selector: ClientSelector
    strategy: Strategy
    sink: MetricsSink
    checkpoint_dir: Path | None = None
    client_sizes: Mapping[int, int] = field(default_factory=dict)  # training samples per client, for selectors
    clock: VirtualClock | None = None  # None: no device traces, every selected client completes
    halor: HalorCoordinator | None = None  # None: no pre-round histogram step, clients train on their own data


class Aggregator:
    def __init__(self, job: JobConfig, parts: AggregatorParts) -> None:
        self._job = job
        self._parts = parts
        self._weights: Weights = parts.initial_weights
        self._version = 0
        self._clock_s = 0.0
        self._stale = StaleUpdates(StalePolicy(job.stale_update, job.stale_factor, job.stale_beta, job.scale_coff))
        self._first_round = 1

    def restore(self, checkpoint_dir: Path) -> int:
        """Continue from a checkpoint: its weights, model version, clock, server optimizer state and Halor's window;
        returns the round it was taken after. Selectors start afresh (their own state is not saved)."""
        state, weights = load_checkpoint(checkpoint_dir)
        self._weights, self._version, self._clock_s = weights, state.model_version, state.clock_s
        self._parts.strategy.load_state_dict(load_strategy_state(checkpoint_dir))
        if self._parts.halor is not None:
            self._parts.halor.restore(load_halor_window(checkpoint_dir), load_halor_sizes(checkpoint_dir))
        if self._parts.clock is not None:
            self._parts.clock.now_s = state.clock_s
        self._first_round = state.round + 1
        _log.info("resuming after round %d from %s (clock %.1f s)", state.round, checkpoint_dir, state.clock_s)
        return state.round

    @property
    def weights(self) -> Weights:
        return self._weights

    def run(self, executor_count: int, register_timeout_s: float = 120.0) -> list[RoundMetrics]:
        board = self._parts.board
        if not board.wait_for_executors(executor_count, register_timeout_s):
            registered = board.executor_count
            if registered == 0:
                board.shutdown("no executor registered")
                self._parts.sink.close()
                raise NoExecutorsError(f"no executor registered within {register_timeout_s:g} s (register_timeout); "
                                       f"expected {executor_count}: check the executor logs, worker_ips and ps_port")
            # the others may still come: a late executor gets work from the next round it asks for
            _log.warning("only %d of %d executors registered within %g s; starting with them", registered,
                         executor_count, register_timeout_s)
        board.set_model(self._version, self._weights)
        sizes = self._client_sizes()
        self._parts.selector.register(self._client_infos(sizes))
        self._parts.strategy.register_clients(sizes)
        history: list[RoundMetrics] = []
        try:
            if self._parts.halor is not None:  # Halor's exact distribution, when the job asks for it
                self._parts.halor.before_run(self._parts.client_ids)
            for round_index in range(self._first_round, self._job.rounds + 1):
                history.append(self._run_round(round_index, executor_count))
        finally:
            board.shutdown("job finished")
            self._parts.sink.close()
        return history

    def _run_round(self, round_index: int, executor_count: int) -> RoundMetrics:
        job, parts = self._job, self._parts
        started = time.perf_counter()
        learning_rate = learning_rate_at(round_index - 1, job.learning_rate, job.decay_factor, job.decay_round,
                                         job.min_learning_rate)
        plan, completing, late = self._choose(round_index)
        participants = sorted([*completing, *late])
        # Halor's ring holds every selected client: who will straggle or drop out is not known before training
        sampled = participants if plan is None else sorted(
            {*plan.completed, *(client for client, _ in plan.stragglers), *plan.dropped})
        resample = parts.halor.before_round(round_index, sampled) if parts.halor is not None else None
        tasks = [
            TrainTask(round=round_index, client_id=client_id, model_version=self._version,
                      learning_rate=learning_rate, local_steps=job.local_steps, batch_size=job.batch_size,
                      seed=derive_seed(job.sample_seed, round_index, "train", client_id),
                      client_state=parts.strategy.task_state(client_id))  # FedDC: the client's drift
            for client_id in participants
        ]
        round_start_s = self._clock_s
        fold = parts.strategy.start_round(self._weights, completing)

        def take(result: TrainResult) -> None:
            if result.client_id in late:  # trained now, arrives after the cut: kept for a later round
                self._stale.hold(result, round_index, round_start_s + late[result.client_id])
            else:
                fold.add(result)

        outcome = parts.board.run_round(round_index, tasks, on_result=take, resample=resample)
        if parts.halor is not None:  # the sizes they trained on are their resampled sizes, for Halor's guard
            parts.halor.after_round(outcome.results)
        for failure in outcome.failures:
            _log.warning("round %d: client %d failed and is dropped: %s", round_index, failure.client_id,
                         failure.error)
        self._advance_clock(plan, outcome)
        self._fold_stale_updates(round_index, fold, [r.client_id for r in outcome.results if r.client_id not in late])
        self._weights = fold.finish()
        self._version += 1
        parts.board.set_model(self._version, self._weights)
        parts.selector.feedback(round_index, [
            ClientOutcome(result.client_id, result.num_samples, result.loss_square_mean,
                          result.wall_time_s if plan is None else plan.finish_s[result.client_id],
                          completed=result.client_id not in late)
            for result in sorted(outcome.results, key=lambda result: result.client_id)])

        test = None
        if round_index % job.eval_interval == 0 or round_index == job.rounds:
            test = parts.board.run_test(round_index, shard_count=executor_count)
            self._save(round_index)
        metrics = RoundMetrics(
            round=round_index, clock_s=self._clock_s, wall_time_s=time.perf_counter() - started,
            participants=tuple(participants), completed=sum(1 for r in outcome.results if r.client_id not in late),
            train_loss=_mean_train_loss(outcome), learning_rate=learning_rate, test=test,
            dropouts=0 if plan is None else len(plan.dropped), stragglers=0 if plan is None else len(plan.stragglers),
            class_distribution=None if parts.halor is None else parts.halor.distribution(),
        )
        parts.sink.on_round(metrics)
        return metrics

    def _choose(self, round_index: int) -> tuple[RoundPlan | None, list[int], dict[int, float]]:
        """The round's plan (None without a virtual clock), the clients that complete it, and the stragglers to
        train anyway for a later round (with their finishing time, seconds after the round's start)."""
        job, parts = self._job, self._parts
        if parts.clock is None:
            candidates = self._guarded(round_index, parts.client_ids, job.num_participants)
            return None, sorted(parts.selector.select(round_index, candidates, job.num_participants)), {}
        count = parts.clock.selection_size(job.num_participants, job.overcommitment)
        if self._stale.enabled and job.adapt_selection:
            arriving = self._stale.arriving_within(round_index, parts.clock.now_s, parts.clock.expected_round_s())
            count = AdaptiveParticipantTarget(job.adapt_selection, job.adapt_selection_cap).target(count, arriving)
        candidates = self._guarded(round_index, parts.clock.feasible(parts.client_ids), count)
        selected = parts.selector.select(round_index, candidates, count)
        plan = parts.clock.plan(round_index, selected)
        # dropouts never report; stragglers are trained only when their updates may still count later
        late = dict(plan.stragglers) if self._stale.enabled else {}
        return plan, sorted(plan.completed), late

    def _guarded(self, round_index: int, candidates: Sequence[int], needed: int) -> Sequence[int]:
        """Halor's guard: the candidates whose resampled size reaches filter_less (every candidate without Halor)."""
        if self._parts.halor is None:
            return candidates
        return self._parts.halor.eligible(round_index, candidates, needed)

    def _advance_clock(self, plan: RoundPlan | None, outcome: RoundOutcome) -> None:
        if plan is None or self._parts.clock is None:  # no traces: the round lasts as long as its slowest client
            self._clock_s += max((result.wall_time_s for result in outcome.results), default=0.0)
        else:
            self._parts.clock.advance(plan)
            self._clock_s = self._parts.clock.now_s

    def _fold_stale_updates(self, round_index: int, fold: RoundFold, fresh_client_ids: list[int]) -> None:
        due = self._stale.due(round_index, self._clock_s)
        if not due:
            return
        weights = self._stale.weights(round_index, due, fresh_client_ids, fold.fresh_mean())
        for pending, weight in zip(due, weights, strict=True):
            fold.add_stale(pending.result, weight)
        _log.info("round %d: %d stale updates folded in (clients %s)", round_index, len(due),
                  ", ".join(str(pending.result.client_id) for pending in due))

    def _client_sizes(self) -> dict[int, int]:
        return {client: self._parts.client_sizes.get(client, 0) for client in self._parts.client_ids}

    def _client_infos(self, sizes: dict[int, int]) -> dict[int, ClientInfo]:
        if self._parts.clock is not None:
            return self._parts.clock.client_infos(sizes)
        return {client: ClientInfo(num_samples=count) for client, count in sizes.items()}

    def _save(self, round_index: int) -> None:
        if self._parts.checkpoint_dir is not None and self._job.save_checkpoint:
            halor = self._parts.halor
            save_checkpoint(self._parts.checkpoint_dir, CheckpointState(round_index, self._version, self._clock_s),
                            self._weights, self._parts.strategy.state_dict(),
                            halor_window=None if halor is None else halor.window(),
                            halor_sizes=None if halor is None else halor.resampled_sizes())


def _mean_train_loss(outcome: RoundOutcome) -> float:
    samples = sum(result.num_samples for result in outcome.results)
    if samples == 0:
        return float("nan")
    return sum(result.loss_mean * result.num_samples for result in outcome.results) / samples


def final_accuracy(history: Sequence[RoundMetrics]) -> EvalResult | None:
    """The last evaluation of a run, if any."""
    tested = [metrics.test for metrics in history if metrics.test is not None]
    return tested[-1] if tested else None
