"""The aggregator's work board: what each executor should do next, and what has come back.

Thread-safe. Executors pull (long-poll) their next event; the round loop publishes work and waits for it to finish.
Clients are handed out dynamically (guided self-scheduling: an asking executor takes ceil(pending / live executors)),
so fast executors take more and the load balances without the aggregator knowing their speeds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    EvalOutcome,
    Event,
    Idle,
    ModelTest,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights


@dataclass
class _ExecutorState:
    known_version: int = -1
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RoundOutcome:
    results: tuple[TrainResult, ...]
    failures: tuple[ClientFailure, ...]


class WorkBoard:
    def __init__(self, long_poll_s: float = 0.5) -> None:
        self._long_poll_s = long_poll_s
        self._changed = threading.Condition()
        self._executors: dict[str, _ExecutorState] = {}
        self._model_version = -1
        self._model: Weights = {}
        self._round = -1
        self._pending_tasks: deque[TrainTask] = deque()
        self._awaited_clients: set[int] = set()
        self._results: dict[int, TrainResult] = {}
        self._failures: dict[int, ClientFailure] = {}
        self._test_round = -1
        self._pending_shards: deque[int] = deque()
        self._shard_count = 0
        self._test_outcomes: dict[int, EvalResult] = {}
        self._shutdown_reason: str | None = None
        self._failure: str | None = None

    # executor side --------------------------------------------------------------------------------------------
    def add_executor(self, executor_id: str) -> None:
        with self._changed:
            self._executors[executor_id] = _ExecutorState()
            self._changed.notify_all()

    @property
    def executor_count(self) -> int:
        with self._changed:
            return len(self._executors)

    def next_event(self, executor_id: str) -> Event:
        deadline = time.monotonic() + self._long_poll_s
        with self._changed:
            state = self._executors.get(executor_id)
            if state is None:
                raise KeyError(f"executor {executor_id!r} has not registered")
            while True:
                state.last_seen = time.monotonic()
                event = self._take_event(state)
                if event is not None:
                    return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Idle(wait_s=0.0)
                self._changed.wait(remaining)

    def _take_event(self, state: _ExecutorState) -> Event | None:
        if self._shutdown_reason is not None:
            return Shutdown(self._shutdown_reason)
        has_work = bool(self._pending_tasks or self._pending_shards)
        if has_work and state.known_version < self._model_version:
            state.known_version = self._model_version
            return UpdateModel(self._model_version, self._model)
        if self._pending_tasks:
            share = math.ceil(len(self._pending_tasks) / max(1, len(self._executors)))
            tasks = tuple(self._pending_tasks.popleft() for _ in range(share))
            return ClientTrain(self._round, self._model_version, tasks)
        if self._pending_shards:
            shard = self._pending_shards.popleft()
            return ModelTest(self._test_round, self._model_version, shard, self._shard_count)
        return None

    def submit(self, completion: Completion) -> None:
        with self._changed:
            if isinstance(completion, ClientUpdate):
                result = completion.result
                if result.round == self._round and result.client_id in self._awaited_clients:
                    self._awaited_clients.discard(result.client_id)
                    self._results[result.client_id] = result
            elif isinstance(completion, ClientFailure):
                if completion.round == self._round and completion.client_id in self._awaited_clients:
                    self._awaited_clients.discard(completion.client_id)
                    self._failures[completion.client_id] = completion
            elif isinstance(completion, EvalOutcome):
                if completion.round == self._test_round:
                    self._test_outcomes[completion.shard_index] = completion.result
            else:
                raise TypeError(f"unknown completion {type(completion).__name__}")
            self._changed.notify_all()

    # round-loop side ------------------------------------------------------------------------------------------
    def set_model(self, version: int, weights: Weights) -> None:
        with self._changed:
            self._model_version = version
            self._model = weights

    def wait_for_executors(self, count: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._executors) >= count, timeout_s)

    def run_round(self, round_index: int, tasks: list[TrainTask]) -> RoundOutcome:
        with self._changed:
            self._round = round_index
            self._pending_tasks = deque(tasks)
            self._awaited_clients = {task.client_id for task in tasks}
            self._results, self._failures = {}, {}
            self._changed.notify_all()
            self._wait(lambda: not self._awaited_clients)
            return RoundOutcome(tuple(self._results.values()), tuple(self._failures.values()))

    def run_test(self, round_index: int, shard_count: int) -> EvalResult:
        with self._changed:
            self._test_round = round_index
            self._shard_count = shard_count
            self._pending_shards = deque(range(shard_count))
            self._test_outcomes = {}
            self._changed.notify_all()
            self._wait(lambda: len(self._test_outcomes) == shard_count)
            total = EvalResult()
            for shard in range(shard_count):
                total = total + self._test_outcomes[shard]
            return total

    def fail(self, reason: str) -> None:
        """Make the round loop's current and future waits raise instead of hanging (e.g. an executor crashed)."""
        with self._changed:
            self._failure = reason
            self._changed.notify_all()

    def _wait(self, done: Callable[[], bool]) -> None:
        self._changed.wait_for(lambda: done() or self._failure is not None)
        if self._failure is not None:
            raise RuntimeError(self._failure)

    def shutdown(self, reason: str) -> None:
        with self._changed:
            self._shutdown_reason = reason
            self._changed.notify_all()
