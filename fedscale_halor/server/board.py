"""The aggregator's work board: what each executor should do next, and what has come back.

Thread-safe: executors pull (long-poll) their next event and submit what they finished, while the round loop
publishes work and waits for it to finish; all of it under one lock, which the board's parts rely on. The round's
clients are handed out from a ``ClientQueue`` (guided self-scheduling, so fast executors take more), the test's
shards from a ``ShardQueue``, and an ``ExecutorRoster`` tells which executors are alive. One silent for longer than
the executor timeout, or hung up (``executor_hung_up``) and not back within the hang-up grace, is declared dead: its
unfinished clients go back to their queue (or are counted as dropped) and its test shards to theirs, so every round
still ends.

Pre-round protocols (Halor's) run as exchanges (``exchange``): per-client questions handed out like tasks, or to the
one executor that must answer them, with answers collected until all came or the step's timeout passed. Questions,
answers and task hints are plug-ins' payloads, wrapped in envelopes by the job's payload registry.
"""

from __future__ import annotations

import logging
import threading
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import replace

from fedscale_halor.aggregation.partial import PartialSum, SumRule, partial_sum
from fedscale_halor.aggregation.update_check import update_mismatch
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.server.client_queue import ClientQueue
from fedscale_halor.server.errors import ExecutorTaskError, JobFailedError
from fedscale_halor.server.exchange import Answer, Exchange, ExchangeOutcome
from fedscale_halor.server.executor_roster import ExecutorRoster, ExecutorState
from fedscale_halor.server.round_terms import LivenessPolicy, RoundOutcome
from fedscale_halor.server.shard_queue import ShardQueue
from fedscale_halor.server.task_failures import TaskFailures
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    Envelope,
    EvalFailure,
    EvalOutcome,
    Event,
    Heartbeat,
    Idle,
    PartialUpdate,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


class WorkBoard:
    def __init__(self, long_poll_s: float = 0.5, liveness: LivenessPolicy | None = None,
                 chunks_per_executor: int = 1, payloads: PayloadRegistry | None = None) -> None:
        """``chunks_per_executor``: in a round whose fold takes results in client-id order, an asking executor takes
        ceil(pending / (live executors x this)) clients; more than 1 keeps the order in which updates arrive closer
        to client-id order (so fewer wait for the in-order fold) at the cost of more polls. Other rounds use plain
        guided self-scheduling (1): fewer, larger events, and fewer, larger partial sums. ``payloads``: the codecs
        of the job's plug-ins' messages (exchanges' questions and answers, task hints)."""
        self._long_poll_s = long_poll_s
        self._liveness = liveness or LivenessPolicy()
        self._payloads = payloads or PayloadRegistry()
        self._changed = threading.Condition()
        self._executors = ExecutorRoster(self._liveness)
        self._model_version = -1
        self._model: Weights = {}
        self._model_cohort = 0  # whose model the current round trains and the current test evaluates
        self._round = -1
        self._hints: tuple[Envelope, ...] = ()
        self._exchange: Exchange | None = None
        self._clients = ClientQueue(chunks_per_executor)
        self._awaited_clients: set[int] = set()
        self._results: dict[int, TrainResult] = {}
        # results and partial sums not yet handed to the round loop, when it takes them
        self._arrived: list[TrainResult | PartialSum] | None = None
        self._sum_rule: SumRule | None = None
        self._failures: dict[int, ClientFailure] = {}
        self._task_failures = TaskFailures()
        self._test_shards = ShardQueue(self._task_failures)
        self._shutdown_reason: str | None = None
        self._failure: str | None = None

    # executor side --------------------------------------------------------------------------------------------
    def add_executor(self, executor_id: str) -> None:
        with self._changed:
            self._executors.add(executor_id)
            self._changed.notify_all()

    @property
    def executor_count(self) -> int:
        with self._changed:
            return len(self._executors)

    def next_event(self, executor_id: str) -> Event:
        deadline = time.monotonic() + self._long_poll_s
        with self._changed:
            state = self._executors.state_of(executor_id)
            state.hung_up_at = None
            while True:
                state.last_seen = time.monotonic()
                event = self._take_event(executor_id, state)
                if event is not None:
                    return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Idle(wait_s=0.0)
                self._changed.wait(remaining)

    def _take_event(self, executor_id: str, state: ExecutorState) -> Event | None:
        if self._shutdown_reason is not None:
            return Shutdown(self._shutdown_reason)
        if self._exchange is not None:
            question = self._exchange.take(executor_id, len(self._executors))
            if question is not None:
                return self._payloads.wrap(question)
        has_work = self._clients.has_pending or self._test_shards.has_pending
        if has_work and state.known_versions.get(self._model_cohort, -1) < self._model_version:
            state.known_versions[self._model_cohort] = self._model_version
            return UpdateModel(self._model_version, self._model, self._model_cohort)
        tasks = self._clients.take(executor_id, state.clients, len(self._executors))
        if tasks:
            rule = self._sum_rule if any(task.summed for task in tasks) else None
            return ClientTrain(self._round, self._model_version, tasks, self._hints, self._model_cohort, rule)
        return self._test_shards.take(state.shards, self._model_version, self._model_cohort)

    def submit(self, executor_id: str, completion: Completion) -> None:
        with self._changed:
            state = self._executors.state_of(executor_id)
            state.heard_from()
            if isinstance(completion, ClientUpdate):
                result = completion.result
                state.clients.pop(result.client_id, None)
                problem = self._unusable(executor_id, result)
                if problem is not None:
                    self._record_failure(ClientFailure(result.round, result.client_id, problem))
                elif result.round == self._round and result.client_id in self._awaited_clients:
                    self._awaited_clients.discard(result.client_id)
                    self._clients.note_round_trip(executor_id, result.client_id)
                    if self._arrived is None:
                        self._results[result.client_id] = result
                    else:  # the round loop takes the weights; the outcome keeps the rest
                        self._arrived.append(result)
                        self._results[result.client_id] = replace(result, weights={}, client_state={})
            elif isinstance(completion, PartialUpdate):
                self._take_partial(executor_id, state.clients, completion)
            elif isinstance(completion, ClientFailure):
                state.clients.pop(completion.client_id, None)
                self._task_failures.client_failed(executor_id, completion)
                self._record_failure(completion)
            elif isinstance(completion, Envelope):
                self._take_answer(executor_id, self._payloads.unwrap(completion))
            elif isinstance(completion, EvalOutcome):
                self._test_shards.evaluated(completion, state.shards)
            elif isinstance(completion, EvalFailure):
                self._test_shards.failed(executor_id, completion, state.shards)
            elif not isinstance(completion, Heartbeat):
                raise TypeError(f"unknown completion {type(completion).__name__}")
            self._changed.notify_all()

    def _unusable(self, executor_id: str, result: TrainResult) -> str | None:
        """Why an awaited client's update cannot be folded; the client then counts as failed."""
        if result.round != self._round or result.client_id not in self._awaited_clients:
            return None
        problem = update_mismatch(result, self._model, self._model_version)
        if problem is not None:
            problem = f"its update from {executor_id} does not fit the global model: {problem}"
            _log.warning("round %d: client %d: %s; counted as failed", result.round, result.client_id, problem)
        return problem

    def _take_partial(self, executor_id: str, held: dict[int, TrainTask], update: PartialUpdate) -> None:
        """Counts the partial's clients as reported, and hands the sum to the round loop; a partial that cannot be
        folded whole counts its clients as failed, or trains them again where one of them had already reported."""
        clients = [result.client_id for result in update.results]
        tasks = [held.pop(client) for client in clients if client in held]
        if update.round != self._round:
            return  # a round already over: its clients were settled then
        awaited = [client for client in clients if client in self._awaited_clients]
        if len(awaited) < len(clients) or len(set(clients)) < len(clients):
            # a client that reported already, from an executor wrongly declared dead: the sum cannot be split
            retrained = [task for task in tasks if task.client_id in self._awaited_clients]
            _log.warning("round %d: the partial sum of %d clients from %s holds clients that already reported; "
                         "discarded, %d of its clients train again", update.round, len(clients), executor_id,
                         len(retrained))
            self._clients.put_back(retrained)
            return
        problem = None if self._arrived is not None else "the round takes each update on its own"
        if problem is None and update.model_version != self._model_version:
            problem = (f"trained on model version {update.model_version}, but the round's model is version "
                       f"{self._model_version}")
        if problem is None:
            try:
                partial = partial_sum(self._model, update.results, update.sums, f"the partial sum from {executor_id}")
            except ValueError as error:
                problem = str(error)
        if problem is not None:
            _log.warning("round %d: the partial sum of clients %s from %s cannot be folded: %s; counted as failed",
                         update.round, clients[:5], executor_id, problem)
            for client in clients:
                self._record_failure(ClientFailure(update.round, client, f"its partial sum from {executor_id} "
                                                                         f"cannot be folded: {problem}"))
            return
        for result in update.results:
            self._awaited_clients.discard(result.client_id)
            self._clients.note_round_trip(executor_id, result.client_id)
            self._results[result.client_id] = result
        self._arrived.append(partial)  # type: ignore[union-attr]

    def _take_answer(self, executor_id: str, payload: object) -> None:
        exchange = self._exchange
        if exchange is None or not exchange.expects(payload):
            _log.info("a %s of round %s from %s came after its step ended; discarded", type(payload).__name__,
                      getattr(payload, "round", "?"), executor_id)
            return
        answer = typing.cast(Answer, payload)
        for client in exchange.accept(executor_id, answer):
            _log.warning("round %d: %s answered for client %d, which it was not asked about; ignored", answer.round,
                         executor_id, client)

    def _record_failure(self, failure: ClientFailure) -> None:
        if failure.round == self._round and failure.client_id in self._awaited_clients:
            self._awaited_clients.discard(failure.client_id)
            self._failures[failure.client_id] = failure

    # liveness ---------------------------------------------------------------------------------------------------
    def _reap_dead_executors(self) -> None:
        now = time.monotonic()
        for executor_id, reason in self._executors.overdue(now):
            self._declare_dead(executor_id, reason)
        self._note_orphans(now)

    def attend(self, executor_id: str) -> None:
        """The executor (re)opened the connection it holds while it runs."""
        with self._changed:
            self._executors.state_of(executor_id).heard_from()

    def executor_hung_up(self, executor_id: str) -> None:
        """The executor's held connection broke: unless it calls again within the hang-up grace, it is declared
        dead then, not after the executor timeout. Ignored once the job is shutting down."""
        with self._changed:
            state = self._executors.get(executor_id)
            if state is None or self._shutdown_reason is not None:
                return
            state.hung_up_at = time.monotonic()
            _log.info("executor %s hung up; it is declared dead unless it calls again within %g s", executor_id,
                      self._liveness.hang_up_grace_s)
            self._changed.notify_all()

    def executor_lost(self, executor_id: str, reason: str) -> None:
        """An executor is known to be gone (its process exited): declared dead now, not after the executor
        timeout."""
        with self._changed:
            if executor_id in self._executors:
                self._declare_dead(executor_id, reason)
                self._note_orphans(time.monotonic())

    @property
    def has_shut_down(self) -> bool:
        with self._changed:
            return self._shutdown_reason is not None

    def _declare_dead(self, executor_id: str, reason: str) -> None:
        state = self._executors.remove(executor_id)
        unfinished = sorted(state.clients)
        _log.warning("executor %s %s: declared dead; %d unfinished clients %s", executor_id, reason, len(unfinished),
                     "reassigned" if self._liveness.reassign_dead_clients else "dropped")
        if self._liveness.reassign_dead_clients:
            self._clients.put_back(state.clients[client] for client in unfinished)
        else:
            for client in unfinished:
                self._record_failure(ClientFailure(self._round, client, f"executor {executor_id} died"))
        self._test_shards.put_back(state.shards)
        if self._exchange is not None:
            self._exchange.executor_died(executor_id)

    def _note_orphans(self, now: float) -> None:
        failure = self._executors.orphan_failure(now)
        if failure is not None:
            self._failure = failure
        self._changed.notify_all()

    # round-loop side ------------------------------------------------------------------------------------------
    def set_model(self, version: int, weights: Weights, cohort: int = 0) -> None:
        """The model that the next round trains and the next test evaluates: ``cohort``'s, at ``version``."""
        with self._changed:
            self._model_version = version
            self._model = weights
            self._model_cohort = cohort

    def wait_for_executors(self, count: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._executors) >= count, timeout_s)

    def exchange(self, exchange: Exchange, timeout_s: float) -> ExchangeOutcome:
        """Hand out the exchange's questions and wait until every one is answered or declined, or ``timeout_s``
        passed; answers arriving later are discarded."""
        with self._changed:
            self._exchange = exchange
            self._changed.notify_all()
        deadline = time.monotonic() + timeout_s
        try:
            self._wait(lambda: exchange.is_settled or time.monotonic() >= deadline, deadline=deadline)
        finally:
            with self._changed:
                self._exchange = None
        with self._changed:
            return exchange.outcome()

    def run_round(self, round_index: int, tasks: list[TrainTask],
                  on_result: Callable[[TrainResult], None] | None = None,
                  hints: Sequence[object] = (), sum_rule: SumRule | None = None,
                  on_partial: Callable[[PartialSum], None] | None = None, in_client_order: bool = True) -> RoundOutcome:
        """Publish the round's tasks and wait until every client has reported or failed. With ``on_result``, each
        result is handed to it as soon as it arrives (on this thread, outside the board's lock), and the outcome's
        results carry no weights. ``hints`` (plug-ins' payloads) travel with every task. Tasks marked ``summed``
        come back in executors' partial sums by ``sum_rule``, handed to ``on_partial`` as they arrive.
        ``in_client_order``: the round's fold takes results in client-id order (see ``chunks_per_executor``)."""
        if any(task.summed for task in tasks) and (sum_rule is None or on_result is None or on_partial is None):
            raise ValueError("summed tasks need a sum rule, on_result and on_partial")
        with self._changed:
            self._round = round_index
            self._sum_rule = sum_rule
            self._hints = tuple(self._payloads.wrap(hint) for hint in hints)
            self._clients.start(tasks, None if in_client_order else 1)
            self._awaited_clients = {task.client_id for task in tasks}
            self._results, self._failures = {}, {}
            self._arrived = [] if on_result is not None else None
            self._changed.notify_all()
        try:
            self._wait(lambda: not self._awaited_clients, on_result, on_partial)
        finally:
            with self._changed:
                self._arrived = None
        with self._changed:
            return RoundOutcome(tuple(self._results.values()), tuple(self._failures.values()),
                                *self._clients.round_trips())

    def run_test(self, round_index: int, shard_count: int) -> EvalResult:
        return self.run_tests(round_index, shard_count, (0,))[0]

    def run_tests(self, round_index: int, shard_count: int, views: Sequence[int]) -> dict[int, EvalResult]:
        """Evaluate the current model on each test view, each in ``shard_count`` shards."""
        with self._changed:
            self._test_shards.start(round_index, shard_count, views)
            self._changed.notify_all()
        self._wait(lambda: self._test_shards.is_complete)
        with self._changed:
            return self._test_shards.totals()

    def _wait(self, done: Callable[[], bool], on_result: Callable[[TrainResult], None] | None = None,
              on_partial: Callable[[PartialSum], None] | None = None, deadline: float | None = None) -> None:
        """Wait, without holding the lock between checks, until ``done()``; hand over arrived results on the way.

        Every acquisition is a ``with`` block, so an exception at any point (a signal turned into SystemExit while
        the job is stopped) never leaves the lock held or releases it twice."""
        check_every = min(1.0, self._liveness.executor_timeout_s / 4)
        while True:
            with self._changed:
                if self._task_failures.fatal is not None:  # the cause, where an executor crashed later too
                    raise ExecutorTaskError(self._task_failures.fatal)
                if self._failure is not None:
                    raise JobFailedError(self._failure)
                arrived: list[TrainResult | PartialSum] = []
                if self._arrived:
                    arrived, self._arrived = self._arrived, []
                elif done():
                    return
                else:
                    wait_s = check_every if deadline is None else min(check_every, deadline - time.monotonic())
                    self._changed.wait(max(0.0, wait_s))
                    self._reap_dead_executors()
            for item in arrived:  # outside the lock: executors keep submitting while the round loop folds
                if isinstance(item, PartialSum):
                    on_partial(item)  # type: ignore[misc]
                else:
                    on_result(item)  # type: ignore[misc]

    def fail(self, reason: str) -> None:
        """Make the round loop's current and future waits raise instead of hanging (e.g. an executor crashed)."""
        with self._changed:
            self._failure = reason
            self._changed.notify_all()

    def shutdown(self, reason: str) -> None:
        with self._changed:
            self._shutdown_reason = reason
            self._changed.notify_all()
