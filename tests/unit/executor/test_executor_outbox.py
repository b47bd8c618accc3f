from __future__ import annotations

import threading

import pytest

from fedscale_halor.executor.outbox import Outbox
from fedscale_halor.transport.base import AggregatorGoneError, Transport
from fedscale_halor.transport.messages import ClientFailure as Failure
from fedscale_halor.transport.messages import Completion, ExecutorInfo, Heartbeat, Idle, RegisterReply


class RecordingTransport(Transport):
    """Records submits; blocks each one until released, and can be told to fail."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, Completion]] = []
        self.release = threading.Semaphore(0)
        self.fail_with: Exception | None = None

    def register(self, info: ExecutorInfo) -> RegisterReply:
        return RegisterReply(True, "")

    def next_event(self, executor_id: str) -> Idle:
        return Idle(0.0)

    def submit(self, executor_id: str, completion: Completion) -> None:
        self.release.acquire()
        if self.fail_with is not None:
            raise self.fail_with
        self.submitted.append((executor_id, completion))


def test_completions_are_delivered_in_order_while_the_sender_goes_on() -> None:
    transport = RecordingTransport()
    outbox = Outbox("executor_0", transport, depth=1)

    outbox.send(Failure(1, 1, "a"))  # taken by the sender thread, which blocks in submit
    outbox.send(Failure(1, 2, "b"))  # waits in the queue: send returned without delivery
    for _ in range(2):
        transport.release.release()
    outbox.flush()
    outbox.close()

    assert [(eid, c.client_id) for eid, c in transport.submitted] == [("executor_0", 1), ("executor_0", 2)]


def test_a_failed_delivery_is_raised_in_the_senders_thread_and_later_completions_are_dropped() -> None:
    transport = RecordingTransport()
    transport.fail_with = AggregatorGoneError("aggregator stopped answering")
    outbox = Outbox("executor_0", transport)

    outbox.send(Heartbeat())
    transport.release.release()
    with pytest.raises(AggregatorGoneError, match="stopped answering"):
        outbox.flush()
    with pytest.raises(AggregatorGoneError):
        outbox.send(Heartbeat())
    outbox.close()

    assert transport.submitted == []
