"""The round loop of the parameter server: select, train, aggregate, evaluate, log, checkpoint.

It talks to executors only through the work board (and so through whichever transport serves the board).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.client.schedule import learning_rate_at
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.plugin.cohorts import CohortLayout, CohortPlugin, OneCohort
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.seeding import derive_seeds
from fedscale_halor.selection.base import ClientOutcome, ClientSelector
from fedscale_halor.server.board import RoundOutcome, WorkBoard
from fedscale_halor.server.checkpoint import (
    CheckpointState,
    load_checkpoint,
    load_strategy_state,
    save_checkpoint,
    saved_files,
)
from fedscale_halor.server.cohort import Cohort, cohort_files, restore_cohorts
from fedscale_halor.server.errors import NoExecutorsError
from fedscale_halor.server.planning import EveryoneCompletes, PlannedRound, RoundPlanner
from fedscale_halor.server.quorum import QuorumPolicy
from fedscale_halor.transport.messages import ClientFailure
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
    planner: RoundPlanner | None = None  # None: no device traces, every selected client completes
    plugins: tuple[RoundPlugin, ...] = ()  # the job's features that hook the round (Halor's pre-round step)
    cohorts: CohortPlugin = field(default_factory=OneCohort)  # how clients form cohorts (Auxo); one by default
    client_views: Mapping[int, int] = field(default_factory=dict)  # client -> its test view; absent: view 0


class Aggregator:
    def __init__(self, job: JobConfig, parts: AggregatorParts) -> None:
        self._job = job
        self._parts = parts
        self._cohorts = [Cohort(index=0, members=tuple(parts.client_ids), weights=parts.initial_weights, version=0,
                                planner=parts.planner or EveryoneCompletes(job.num_participants),
                                selector=parts.selector, strategy=parts.strategy,
                                participants=job.num_participants)]
        self._quorum = QuorumPolicy(job.quorum, job.round_retries)
        self._first_round = 1

    def restore(self, checkpoint_dir: Path) -> int:
        """Continue from a checkpoint: every cohort's weights, model version, clock and server optimizer state,
        and the plug-ins' files; returns the round it was taken after. Selectors start afresh (their own state is
        not saved)."""
        state, weights = load_checkpoint(checkpoint_dir)
        first = self._cohorts[0]
        first.weights, first.version = weights, state.model_version
        first.strategy.load_state_dict(load_strategy_state(checkpoint_dir))
        files = saved_files(checkpoint_dir)
        for plugin in self._parts.plugins:
            plugin.restore(files)
        first.planner.restore(state.clock_s)  # after the plug-ins: a plug-in's planner checks it against theirs
        self._cohorts = restore_cohorts(first, files)
        self._parts.cohorts.restore(files)
        self._first_round = state.round + 1
        _log.info("resuming after round %d from %s (clock %.1f s, %d cohort%s)", state.round, checkpoint_dir,
                  state.clock_s, len(self._cohorts), "" if len(self._cohorts) == 1 else "s")
        return state.round

    @property
    def weights(self) -> Weights:
        """Cohort 0's model: the job's model when it has one cohort."""
        return self._cohorts[0].weights

    @property
    def cohort_weights(self) -> tuple[Weights, ...]:
        return tuple(cohort.weights for cohort in self._cohorts)

    @property
    def cohort_members(self) -> tuple[tuple[int, ...], ...]:
        return tuple(cohort.members for cohort in self._cohorts)

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
        sizes = self._client_sizes()
        client_ids = np.fromiter(sizes, np.int64, len(sizes))
        num_samples = np.fromiter(sizes.values(), np.int64, len(sizes))
        for cohort in self._cohorts:
            columns = cohort.planner.client_columns(client_ids, num_samples)
            cohort.selector.register_columns(columns.client_ids, columns.num_samples, columns.expected_duration_s,
                                             columns.online_fraction)
            cohort.strategy.register_clients(sizes)
        history: list[RoundMetrics] = []
        ending = "job failed"  # what the executors' logs say they stopped for
        try:
            for plugin in self._parts.plugins:
                plugin.before_run(self._parts.client_ids)
            for round_index in range(self._first_round, self._job.rounds + 1):
                for cohort in list(self._cohorts):  # cohorts made in this round start in the next
                    if cohort.members:  # a cohort all of whose clients moved elsewhere waits for new ones
                        history.append(self._run_round(round_index, cohort, executor_count))
                if round_index % self._job.eval_interval == 0 or round_index == self._job.rounds:
                    self._save(round_index)
            ending = "job finished"
        finally:
            board.shutdown(ending)
            self._parts.sink.close()
        return history

    def _run_round(self, round_index: int, cohort: Cohort, executor_count: int) -> RoundMetrics:
        job, parts = self._job, self._parts
        started = time.perf_counter()
        cohort.set_participants(parts.cohorts.participants(
            round_index, cohort.index, [len(other.members) for other in self._cohorts], job.num_participants))
        parts.board.set_model(cohort.version, cohort.weights, cohort.index)
        learning_rate = learning_rate_at(round_index - 1, job.learning_rate, job.decay_factor, job.decay_round,
                                         job.min_learning_rate)
        hints = _OncePerRound(round_index, parts.plugins)
        excluded: set[int] = set()
        short: list[tuple[int, Sequence[ClientFailure]]] = []
        for attempt_number in range(1, job.round_retries + 2):
            attempt = self._attempt(round_index, cohort, learning_rate, excluded, hints)
            if self._quorum.met(len(attempt.planned.sampled), attempt.outcome.failures):
                break
            self._quorum.note_short(round_index, attempt_number, len(attempt.planned.sampled), attempt.outcome.failures)
            short.append((len(attempt.planned.sampled), attempt.outcome.failures))
            excluded.update(failure.client_id for failure in attempt.outcome.failures)
        else:
            raise self._quorum.failure(round_index, short)
        metrics = self._commit(round_index, cohort, attempt, learning_rate, executor_count, started,
                               attempts=len(short) + 1)
        layout = parts.cohorts.after_cohort_round(round_index, cohort.index, self.cohort_members,
                                                  attempt.outcome.results)
        if layout is not None:
            self._apply(round_index, layout)
        return metrics

    def _attempt(self, round_index: int, cohort: Cohort, learning_rate: float, excluded: set[int],
                 hints: _OncePerRound) -> _Attempt:
        """Select, plan, train and fold one run of the cohort's round; nothing is committed yet."""
        job, parts = self._job, self._parts
        planned, late = self._choose(round_index, cohort, excluded)
        participants = sorted([*planned.completing, *late])
        round_hints = hints.of(planned.sampled)
        fold = cohort.strategy.start_round(cohort.weights, planned.completing)
        # executors sum the updates that go straight into the fold, unless something needs each one
        sum_rule = None if parts.cohorts.takes_updates else fold.sum_rule()
        seeds = derive_seeds(job.sample_seed, round_index, "train", participants)
        tasks = [
            TrainTask(round=round_index, client_id=client_id, model_version=cohort.version,
                      learning_rate=learning_rate, local_steps=planned.local_steps.get(client_id, job.local_steps),
                      batch_size=job.batch_size, seed=seed,
                      client_state=cohort.strategy.task_state(client_id),  # FedDC: the client's drift
                      summed=sum_rule is not None and client_id not in late)
            for client_id, seed in zip(participants, seeds, strict=True)
        ]
        late_results: list[TrainResult] = []

        def take(result: TrainResult) -> None:
            parts.cohorts.take_update(round_index, cohort.index, cohort.weights, result)
            if result.client_id in late:  # trained now, arrives after the cut: kept for a later round
                late_results.append(result)
            else:
                fold.add(result)

        outcome = parts.board.run_round(round_index, tasks, on_result=take, hints=round_hints, sum_rule=sum_rule,
                                        on_partial=fold.add_partial, in_client_order=fold.in_client_order)
        return _Attempt(planned, late, tuple(participants), fold, outcome, tuple(late_results))

    def _commit(self, round_index: int, cohort: Cohort, attempt: _Attempt, learning_rate: float,
                executor_count: int, started: float, attempts: int) -> RoundMetrics:
        job, parts = self._job, self._parts
        planned, late, outcome = attempt.planned, attempt.late, attempt.outcome
        round_start_s = cohort.planner.now_s
        for plugin in parts.plugins:
            plugin.take_late(round_index, attempt.late_results, round_start_s, late)
        for plugin in parts.plugins:
            plugin.after_round(round_index, outcome.results)
        for failure in outcome.failures:
            _log.warning("round %d: client %d failed and is dropped: %s", round_index, failure.client_id,
                         failure.error)
        planner = cohort.planner
        clock_s = planner.advance(planned, outcome.results)
        fresh = [result.client_id for result in outcome.results if result.client_id not in late]
        for plugin in parts.plugins:
            plugin.fold_more(round_index, attempt.fold, fresh, clock_s)
        cohort.weights = attempt.fold.finish()
        cohort.version += 1
        parts.board.set_model(cohort.version, cohort.weights, cohort.index)
        cohort.selector.feedback(round_index, [
            ClientOutcome(result.client_id, result.num_samples, result.loss_square_mean,
                          planner.duration_s(planned, result), completed=planner.completed(planned, result))
            for result in sorted(outcome.results, key=lambda result: result.client_id)])

        test, view_tests, view_members = None, {}, Counter[int]()
        if round_index % job.eval_interval == 0 or round_index == job.rounds:
            view_members = (Counter(parts.client_views.get(client, 0) for client in cohort.members)
                            if parts.client_views else Counter({0: len(cohort.members)}))
            view_tests = parts.board.run_tests(round_index, executor_count, sorted(view_members))
            test = _member_weighted(view_tests, view_members)
        metrics = RoundMetrics(
            round=round_index, clock_s=clock_s, cohort=cohort.index,
            members=len(cohort.members) if test is not None else 0,
            view_tests=view_tests if len(view_tests) > 1 else {}, view_members=dict(view_members),
            wall_time_s=time.perf_counter() - started,
            participants=attempt.participants, completed=len(fresh),
            train_loss=_mean_train_loss(outcome), learning_rate=learning_rate, test=test,
            dropouts=len(planned.dropped), stragglers=len(planned.stragglers), attempts=attempts,
            client_round_trip_s=outcome.client_round_trip_s, executor_round_trip_s=outcome.executor_round_trip_s,
            shortened_local_steps=planned.local_steps,
        )
        for plugin in parts.plugins:
            metrics = plugin.round_metrics(metrics)
        parts.sink.on_round(metrics)
        return metrics

    def _choose(self, round_index: int, cohort: Cohort,
                excluded: set[int]) -> tuple[PlannedRound, Mapping[int, float]]:
        """The cohort's plan for the round, and the stragglers that plug-ins train anyway for a later round
        (client -> finishing time after the round's start). ``excluded``: clients that failed in an earlier attempt
        of the round."""
        parts, planner = self._parts, cohort.planner
        count = planner.selection_size()
        for plugin in parts.plugins:
            count = plugin.selection_size(round_index, count, planner)
        candidates = self._guarded(round_index, _without(planner.feasible(cohort.member_ids), excluded), count)
        planned = planner.plan(round_index, cohort.selector.select(round_index, candidates, count), failed=excluded)
        # dropouts never report; stragglers train only when a plug-in keeps their updates for later
        late: dict[int, float] = {}
        for plugin in parts.plugins:
            late.update(plugin.late_clients(round_index, planned.stragglers))
        return planned, late

    def _guarded(self, round_index: int, candidates: Sequence[int], needed: int) -> Sequence[int]:
        """The candidates every plug-in lets selection pick from (Halor's guard: those whose resampled size
        reaches filter_less)."""
        for plugin in self._parts.plugins:
            candidates = plugin.eligible(round_index, candidates, needed)
        return candidates

    def _client_sizes(self) -> dict[int, int]:
        return {client: self._parts.client_sizes.get(client, 0) for client in self._parts.client_ids}

    def _apply(self, round_index: int, layout: CohortLayout) -> None:
        """A cohort plug-in's new layout: new cohorts branch from their parents, every cohort takes its members."""
        for index in range(len(self._cohorts), len(layout.members)):
            parent = self._cohorts[layout.parents[index]]
            self._cohorts.append(parent.branch(index, layout.members[index]))
            _log.info("round %d: cohort %d branches from cohort %d", round_index, index, parent.index)
        for cohort, members in zip(self._cohorts, layout.members, strict=True):
            cohort.set_members(members)
        _log.info("round %d: cohort sizes %s", round_index, [len(cohort.members) for cohort in self._cohorts])

    def _save(self, round_index: int) -> None:
        if self._parts.checkpoint_dir is not None and self._job.save_checkpoint:
            files = {name: data for plugin in self._parts.plugins for name, data in plugin.save().items()}
            files.update(self._parts.cohorts.save())
            files.update(cohort_files(self._cohorts))
            first = self._cohorts[0]
            save_checkpoint(self._parts.checkpoint_dir, CheckpointState(round_index, first.version,
                                                                        first.planner.now_s),
                            first.weights, first.strategy.state_dict(), plugin_files=files)


@dataclass(frozen=True)
class _Attempt:
    planned: PlannedRound
    late: Mapping[int, float]  # stragglers trained anyway: their finishing times after the round's start
    participants: tuple[int, ...]
    fold: RoundFold
    outcome: RoundOutcome
    late_results: tuple[TrainResult, ...]


class _OncePerRound:
    """Pre-round protocols run once per round: a retried attempt gets the same hints (Halor: its clients resample
    toward the same target, and their masks are not derived a second time for the same round)."""

    def __init__(self, round_index: int, plugins: Sequence[RoundPlugin]) -> None:
        self._round_index = round_index
        self._plugins = plugins
        self._hints: tuple[object, ...] | None = None

    def of(self, sampled: Sequence[int]) -> tuple[object, ...]:
        if self._hints is None:
            self._hints = tuple(hint for plugin in self._plugins
                                for hint in plugin.before_round(self._round_index, sampled))
        return self._hints


def _without(clients: Sequence[int] | np.ndarray, excluded: set[int]) -> Sequence[int] | np.ndarray:
    if not excluded:
        return clients
    if isinstance(clients, np.ndarray):
        return clients[~np.isin(clients, np.fromiter(excluded, np.int64, len(excluded)))]
    return [client for client in clients if client not in excluded]


def _member_weighted(view_tests: Mapping[int, EvalResult], view_members: Mapping[int, int]) -> EvalResult:
    """A cohort's test: each member evaluated on its own test view; one view is the test set's own result."""
    if len(view_tests) == 1:
        return next(iter(view_tests.values()))
    total = EvalResult()
    for view, result in sorted(view_tests.items()):
        total = total + result.times(view_members[view])
    return total


def _mean_train_loss(outcome: RoundOutcome) -> float:
    samples = sum(result.num_samples for result in outcome.results)
    if samples == 0:
        return float("nan")
    return sum(result.loss_mean * result.num_samples for result in outcome.results) / samples


def final_accuracy(history: Sequence[RoundMetrics]) -> EvalResult | None:
    """The last evaluation of a run, if any."""
    tested = [metrics.test for metrics in history if metrics.test is not None]
    return tested[-1] if tested else None
