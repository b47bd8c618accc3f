"""An executor over gRPC whose aggregator goes away: briefly unreachable, it carries on where it was; restarted
with a new board (a resumed job), it registers again and forgets its model; gone for longer than the reconnect
window, it exits with a clear log line."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch

from fedscale_halor.executor.executor import Executor, ExecutorParts
from fedscale_halor.transport.base import AggregatorService
from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import (
    ClientTrain,
    Completion,
    Event,
    ExecutorInfo,
    Heartbeat,
    Idle,
    RegisterReply,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import TrainTask

CHUNK_BYTES = 64 * 1024


class Aggregator(AggregatorService):
    """Knows the executors that registered with it; hands each poll the next scripted event (Idle when none)."""

    def __init__(self, events: list[Event] | None = None) -> None:
        self.events = list(events or [])
        self.registrations = 0
        self.known: set[str] = set()
        self._lock = threading.Lock()

    def register(self, token: str, info: ExecutorInfo) -> RegisterReply:
        with self._lock:
            self.registrations += 1
            self.known.add(info.executor_id)
        return RegisterReply(accepted=True)

    def next_event(self, token: str, executor_id: str) -> Event:
        with self._lock:
            if executor_id not in self.known:
                raise KeyError(f"executor {executor_id!r} has not registered")
            return self.events.pop(0) if self.events else Idle(0.05)

    def submit(self, token: str, executor_id: str, completion: Completion) -> None:
        with self._lock:
            if executor_id not in self.known:
                raise KeyError(f"executor {executor_id!r} has not registered")

    def attend(self, token: str, executor_id: str) -> None:
        self.submit(token, executor_id, Heartbeat())

    def hung_up(self, executor_id: str) -> None:
        pass  # a restarted aggregator forgets its executors anyway


def _parts() -> ExecutorParts:
    # the events here never train or evaluate, so the executor needs no data and no trainer
    return ExecutorParts(model=torch.nn.Linear(2, 1), dataset=cast(Any, None), trainer=cast(Any, None),
                         test_batch_size=1, heartbeat_s=0.2)


def _run_in_thread(executor: Executor) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            executor.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def _lose_and_restart(first: Aggregator, second: Aggregator, caplog: pytest.LogCaptureFixture,
                      then: Event | None = None, down_s: float = 1.0) -> tuple[list[BaseException], bool]:
    """Run an executor against ``first``, stop its server for ``down_s``, serve ``second`` on the same port (and
    give it ``then`` to hand out), and wait for the executor to end; returns its errors and whether it ended."""
    server = GrpcAggregatorServer(first, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    port = server.start()
    transport = GrpcTransport(f"127.0.0.1:{port}", "token", chunk_bytes=CHUNK_BYTES, reconnect_window_s=10.0)
    with caplog.at_level(logging.INFO):
        thread, errors = _run_in_thread(Executor("executor_0", transport, _parts()))
        _wait_until(lambda: not first.events)  # the executor took what the first aggregator had
        server.stop(grace_s=0.1)
        time.sleep(down_s)
        with GrpcAggregatorServer(second, "127.0.0.1", port, chunk_bytes=CHUNK_BYTES):
            if then is not None:
                second.events.append(then)
            thread.join(timeout=20)
    transport.close()
    return errors, not thread.is_alive()


def test_an_executor_carries_on_with_an_aggregator_that_was_briefly_unreachable(
        caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: the same aggregator (the same board) before and after: only its listener went away
    aggregator = Aggregator(events=[Idle(0.05)])

    # Execute
    errors, ended = _lose_and_restart(aggregator, aggregator, caplog, then=Shutdown("job finished"))

    # Assert: back without registering again, and told to stop by the same aggregator
    assert ended and errors == []
    assert aggregator.registrations == 1
    assert _messages(caplog, "shutting down (job finished)")
    assert len(_messages(caplog, "lost the aggregator")) == 1
    assert len(_messages(caplog, "answers again")) == 1
    assert _messages(caplog, "registering again") == []


def test_an_executor_registers_again_with_a_restarted_aggregator_and_forgets_its_model(
        caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: the first aggregator sends model version 3; the restarted one does not know the executor and asks it
    # to train on version 3 without sending that model first
    weights = {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}
    task = TrainTask(round=4, client_id=1, model_version=3, learning_rate=0.1, local_steps=1, batch_size=1, seed=0)
    first = Aggregator(events=[UpdateModel(3, weights)])
    restarted = Aggregator(events=[ClientTrain(4, 3, (task,))])

    # Execute
    errors, ended = _lose_and_restart(first, restarted, caplog)

    # Assert: it registered with the new aggregator and refused to train on the model it held from the old one
    assert ended
    assert restarted.registrations == 1 and restarted.known == {"executor_0"}
    assert len(_messages(caplog, "registering again")) == 1
    [error] = errors
    assert isinstance(error, RuntimeError)
    assert "asked to train on model version 3 of cohort 0 but holds version -1" in str(error)


def test_an_executor_gives_up_an_aggregator_gone_for_longer_than_the_reconnect_window(
        caplog: pytest.LogCaptureFixture) -> None:
    aggregator = Aggregator()
    server = GrpcAggregatorServer(aggregator, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    transport = GrpcTransport(f"127.0.0.1:{server.start()}", "token", chunk_bytes=CHUNK_BYTES,
                              reconnect_window_s=2.0)

    with caplog.at_level(logging.INFO):
        thread, errors = _run_in_thread(Executor("executor_0", transport, _parts()))
        _wait_until(lambda: aggregator.registrations == 1)
        server.stop(grace_s=0.1)
        stopped_at = time.monotonic()
        thread.join(timeout=20)
        ended_after_s = time.monotonic() - stopped_at
    transport.close()

    assert not thread.is_alive() and errors == []
    assert 2.0 <= ended_after_s < 8.0
    [gave_up] = _messages(caplog, "the aggregator is gone, giving up")
    assert "reconnect_timeout 2 s" in gave_up
