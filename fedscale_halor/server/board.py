"""The aggregator's work board: what each executor should do next, and what has come back.

Thread-safe. Executors pull (long-poll) their next event; the round loop publishes work and waits for it to finish.
Clients are handed out dynamically (guided self-scheduling: an asking executor takes ceil(pending / live executors)),
so fast executors take more and the load balances without the aggregator knowing their speeds. An executor silent
for longer than the executor timeout is declared dead: its unfinished clients go back to the queue (or are counted
as dropped) and its test shards go back to the queue, so every round still ends. One whose held connection broke
(``executor_hung_up``) is declared dead sooner, once the hang-up grace passes without a call of its own.

Pre-round protocols (Halor's) run as exchanges (``exchange``): per-client questions handed out like tasks, or to the
one executor that must answer them, with answers collected until all came or the step's timeout passed. Questions,
answers and task hints are plug-ins' payloads, wrapped in envelopes by the job's payload registry.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.server.errors import ExecutorTaskError, JobFailedError
from fedscale_halor.server.exchange import Answer, Exchange, ExchangeOutcome
from fedscale_halor.server.round_terms import LivenessPolicy, RoundOutcome
from fedscale_halor.server.task_failures import TaskFailures
from fedscale_halor.server.update_check import update_mismatch
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
    ModelTest,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass
class _ExecutorState:
    known_versions: dict[int, int] = field(default_factory=dict)  # cohort -> the latest version it was sent
    last_seen: float = field(default_factory=time.monotonic)
    clients: dict[int, TrainTask] = field(default_factory=dict)
    shards: set[tuple[int, int]] = field(default_factory=set)  # (test view, shard) it is evaluating
    hung_up_at: float | None = None  # when its held connection broke, until a call of its own shows it is alive


class WorkBoard:
    def __init__(self, long_poll_s: float = 0.5, liveness: LivenessPolicy | None = None,
                 chunks_per_executor: int = 1, payloads: PayloadRegistry | None = None) -> None:
        """``chunks_per_executor``: an asking executor takes ceil(pending / (live executors x this)) clients; 1 is
        plain guided self-scheduling, more keeps the order in which updates arrive closer to client-id order (so
        fewer wait for the in-order fold) at the cost of more polls. ``payloads``: the codecs of the job's plug-ins'
        messages (exchanges' questions and answers, task hints)."""
        if chunks_per_executor < 1:
            raise ValueError(f"chunks_per_executor must be at least 1, got {chunks_per_executor}")
        self._chunks_per_executor = chunks_per_executor
        self._long_poll_s = long_poll_s
        self._liveness = liveness or LivenessPolicy()
        self._payloads = payloads or PayloadRegistry()
        self._changed = threading.Condition()
        self._executors: dict[str, _ExecutorState] = {}
        self._reaped: set[str] = set()
        self._orphaned_since: float | None = None
        self._model_version = -1
        self._model: Weights = {}
        self._model_cohort = 0  # whose model the current round trains and the current test evaluates
        self._round = -1
        self._hints: tuple[Envelope, ...] = ()
        self._exchange: Exchange | None = None
        self._pending_tasks: deque[TrainTask] = deque()
        self._awaited_clients: set[int] = set()
        self._results: dict[int, TrainResult] = {}
        self._arrived: list[TrainResult] | None = None  # results not yet handed to the round loop, when it takes them
        self._failures: dict[int, ClientFailure] = {}
        self._handed_out_at: dict[int, float] = {}  # client -> when its task left, this round
        self._client_round_trip_s: dict[int, float] = {}
        self._executor_first_task_at: dict[str, float] = {}
        self._executor_round_trip_s: dict[str, float] = {}
        self._test_round = -1
        self._pending_shards: deque[tuple[int, int]] = deque()  # (test view, shard)
        self._shard_count = 0
        self._test_outcomes: dict[tuple[int, int], EvalResult] = {}
        self._task_failures = TaskFailures()
        self._shutdown_reason: str | None = None
        self._failure: str | None = None

    # executor side --------------------------------------------------------------------------------------------
    def add_executor(self, executor_id: str) -> None:
        with self._changed:
            self._executors[executor_id] = _ExecutorState()
            self._reaped.discard(executor_id)
            self._changed.notify_all()

    @property
    def executor_count(self) -> int:
        with self._changed:
            return len(self._executors)

    def next_event(self, executor_id: str) -> Event:
        deadline = time.monotonic() + self._long_poll_s
        with self._changed:
            state = self._state_of(executor_id)
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

    def _state_of(self, executor_id: str) -> _ExecutorState:
        state = self._executors.get(executor_id)
        if state is None and executor_id in self._reaped:
            _log.warning("executor %s was declared dead but is back; it gets work again", executor_id)
            self._reaped.discard(executor_id)
            state = self._executors[executor_id] = _ExecutorState()
        if state is None:
            raise KeyError(f"executor {executor_id!r} has not registered")
        return state

    def _take_event(self, executor_id: str, state: _ExecutorState) -> Event | None:
        if self._shutdown_reason is not None:
            return Shutdown(self._shutdown_reason)
        if self._exchange is not None:
            question = self._exchange.take(executor_id, len(self._executors))
            if question is not None:
                return self._payloads.wrap(question)
        has_work = bool(self._pending_tasks or self._pending_shards)
        if has_work and state.known_versions.get(self._model_cohort, -1) < self._model_version:
            state.known_versions[self._model_cohort] = self._model_version
            return UpdateModel(self._model_version, self._model, self._model_cohort)
        if self._pending_tasks:
            share = math.ceil(len(self._pending_tasks) / (max(1, len(self._executors)) * self._chunks_per_executor))
            tasks = tuple(self._pending_tasks.popleft() for _ in range(share))
            state.clients.update({task.client_id: task for task in tasks})
            now = time.monotonic()
            self._handed_out_at.update((task.client_id, now) for task in tasks)
            self._executor_first_task_at.setdefault(executor_id, now)
            return ClientTrain(self._round, self._model_version, tasks, self._hints, self._model_cohort)
        if self._pending_shards:
            view, shard = self._pending_shards.popleft()
            state.shards.add((view, shard))
            return ModelTest(self._test_round, self._model_version, shard, self._shard_count, self._model_cohort,
                             view)
        return None

    def submit(self, executor_id: str, completion: Completion) -> None:
        with self._changed:
            state = self._state_of(executor_id)
            state.last_seen, state.hung_up_at = time.monotonic(), None
            if isinstance(completion, ClientUpdate):
                result = completion.result
                state.clients.pop(result.client_id, None)
                problem = self._unusable(executor_id, result)
                if problem is not None:
                    self._record_failure(ClientFailure(result.round, result.client_id, problem))
                elif result.round == self._round and result.client_id in self._awaited_clients:
                    self._awaited_clients.discard(result.client_id)
                    self._note_round_trip(executor_id, result.client_id)
                    if self._arrived is None:
                        self._results[result.client_id] = result
                    else:  # the round loop takes the weights; the outcome keeps the rest
                        self._arrived.append(result)
                        self._results[result.client_id] = replace(result, weights={}, client_state={})
            elif isinstance(completion, ClientFailure):
                state.clients.pop(completion.client_id, None)
                self._task_failures.client_failed(executor_id, completion)
                self._record_failure(completion)
            elif isinstance(completion, Envelope):
                self._take_answer(executor_id, self._payloads.unwrap(completion))
            elif isinstance(completion, EvalOutcome):
                state.shards.discard((completion.view, completion.shard_index))
                if completion.round == self._test_round:
                    self._test_outcomes[completion.view, completion.shard_index] = completion.result
            elif isinstance(completion, EvalFailure):
                state.shards.discard((completion.view, completion.shard_index))
                if self._task_failures.shard_failed(executor_id, completion, self._test_round, self._test_outcomes):
                    self._pending_shards.append((completion.view, completion.shard_index))
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

    def _note_round_trip(self, executor_id: str, client_id: int) -> None:
        now = time.monotonic()
        handed_out = self._handed_out_at.get(client_id)
        if handed_out is not None:
            self._client_round_trip_s[client_id] = now - handed_out
        first = self._executor_first_task_at.get(executor_id)
        if first is not None:
            self._executor_round_trip_s[executor_id] = now - first

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
        for executor_id, state in list(self._executors.items()):
            silent_s = now - state.last_seen
            if silent_s > self._liveness.executor_timeout_s:
                self._declare_dead(executor_id, f"silent for {silent_s:.0f} s")
            elif state.hung_up_at is not None and now - state.hung_up_at > self._liveness.hang_up_grace_s:
                self._declare_dead(executor_id, f"hung up {now - state.hung_up_at:.1f} s ago and did not call again")
        self._note_orphans(now)

    def attend(self, executor_id: str) -> None:
        """The executor (re)opened the connection it holds while it runs."""
        with self._changed:
            state = self._state_of(executor_id)
            state.last_seen, state.hung_up_at = time.monotonic(), None

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
        state = self._executors.pop(executor_id)
        self._reaped.add(executor_id)
        unfinished = sorted(state.clients)
        _log.warning("executor %s %s: declared dead; %d unfinished clients %s", executor_id, reason, len(unfinished),
                     "reassigned" if self._liveness.reassign_dead_clients else "dropped")
        if self._liveness.reassign_dead_clients:
            self._pending_tasks.extend(state.clients[client] for client in unfinished)
        else:
            for client in unfinished:
                self._record_failure(ClientFailure(self._round, client, f"executor {executor_id} died"))
        self._pending_shards.extend(sorted(state.shards))
        if self._exchange is not None:
            self._exchange.executor_died(executor_id)

    def _note_orphans(self, now: float) -> None:
        if self._executors:
            self._orphaned_since = None
        elif self._orphaned_since is None:
            self._orphaned_since = now
        elif now - self._orphaned_since > self._liveness.orphan_timeout_s:
            self._failure = (f"no executor has been alive for {self._liveness.orphan_timeout_s:.0f} s "
                             f"(executor timeout {self._liveness.executor_timeout_s:.0f} s)")
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
                  hints: Sequence[object] = ()) -> RoundOutcome:
        """Publish the round's tasks and wait until every client has reported or failed. With ``on_result``, each
        result is handed to it as soon as it arrives (on this thread, outside the board's lock), and the outcome's
        results carry no weights. ``hints`` (plug-ins' payloads) travel with every task."""
        with self._changed:
            self._round = round_index
            self._hints = tuple(self._payloads.wrap(hint) for hint in hints)
            self._pending_tasks = deque(tasks)
            self._awaited_clients = {task.client_id for task in tasks}
            self._results, self._failures = {}, {}
            self._handed_out_at, self._client_round_trip_s = {}, {}
            self._executor_first_task_at, self._executor_round_trip_s = {}, {}
            self._arrived = [] if on_result is not None else None
            self._changed.notify_all()
        try:
            self._wait(lambda: not self._awaited_clients, on_result)
        finally:
            with self._changed:
                self._arrived = None
        with self._changed:
            return RoundOutcome(tuple(self._results.values()), tuple(self._failures.values()),
                                dict(self._client_round_trip_s), dict(self._executor_round_trip_s))

    def run_test(self, round_index: int, shard_count: int) -> EvalResult:
        return self.run_tests(round_index, shard_count, (0,))[0]

    def run_tests(self, round_index: int, shard_count: int, views: Sequence[int]) -> dict[int, EvalResult]:
        """Evaluate the current model on each test view, each in ``shard_count`` shards."""
        items = [(view, shard) for view in views for shard in range(shard_count)]
        with self._changed:
            self._test_round = round_index
            self._shard_count = shard_count
            self._pending_shards = deque(items)
            self._test_outcomes = {}
            self._task_failures.new_test()
            self._changed.notify_all()
        self._wait(lambda: len(self._test_outcomes) == len(items))
        with self._changed:
            totals = {view: EvalResult() for view in views}
            for view, shard in items:
                totals[view] = totals[view] + self._test_outcomes[view, shard]
            return totals

    def _wait(self, done: Callable[[], bool], on_result: Callable[[TrainResult], None] | None = None,
              deadline: float | None = None) -> None:
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
                arrived: list[TrainResult] = []
                if self._arrived:
                    arrived, self._arrived = self._arrived, []
                elif done():
                    return
                else:
                    wait_s = check_every if deadline is None else min(check_every, deadline - time.monotonic())
                    self._changed.wait(max(0.0, wait_s))
                    self._reap_dead_executors()
            for result in arrived:  # outside the lock: executors keep submitting while the round loop folds
                on_result(result)  # type: ignore[misc]

    def fail(self, reason: str) -> None:
        """Make the round loop's current and future waits raise instead of hanging (e.g. an executor crashed)."""
        with self._changed:
            self._failure = reason
            self._changed.notify_all()

    def shutdown(self, reason: str) -> None:
        with self._changed:
            self._shutdown_reason = reason
            self._changed.notify_all()
