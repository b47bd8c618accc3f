from __future__ import annotations

import threading

import pytest
import torch

from fedscale_halor.executor.outbox import Outbox, completion_bytes
from fedscale_halor.transport.base import AggregatorGoneError, Transport
from fedscale_halor.transport.messages import ClientFailure as Failure
from fedscale_halor.transport.messages import ClientUpdate, Completion, ExecutorInfo, Heartbeat, Idle, RegisterReply
from fedscale_halor.types import TrainResult


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


def _update(client_id: int, floats: int) -> ClientUpdate:
    return ClientUpdate(TrainResult(client_id=client_id, round=1, model_version=0,
                                    weights={"w": torch.zeros(floats)}, num_samples=1, num_steps=1, loss_mean=0.0,
                                    loss_square_mean=0.0, wall_time_s=0.0))


def test_updates_queue_up_to_the_byte_budget_then_the_trainer_waits() -> None:
    # Prepare: updates of 4,000 bytes, a budget of 10,000 bytes; the transport holds every submit until released
    transport = RecordingTransport()
    outbox = Outbox("executor_0", transport, depth=1, budget_bytes=10_000)
    outbox.send(_update(1, 1000))  # on the wire (its bytes still count until delivered)
    outbox.send(_update(2, 1000))  # 8,000 bytes: waits without blocking the trainer
    third_sent = threading.Event()

    # Execute: 12,000 bytes would exceed the budget, so the third send blocks until the first is delivered
    sender = threading.Thread(target=lambda: (outbox.send(_update(3, 1000)), third_sent.set()))
    sender.start()
    blocked = not third_sent.wait(0.3)
    transport.release.release()
    unblocked = third_sent.wait(5.0)
    for _ in range(2):
        transport.release.release()
    outbox.flush()
    outbox.close()
    sender.join()

    # Assert
    assert blocked and unblocked
    assert [completion.result.client_id for _, completion in transport.submitted] == [1, 2, 3]


def test_one_update_larger_than_the_budget_still_goes() -> None:
    transport = RecordingTransport()
    outbox = Outbox("executor_0", transport, depth=1, budget_bytes=100)

    outbox.send(_update(1, 1000))
    transport.release.release()
    outbox.flush()
    outbox.close()

    assert completion_bytes(transport.submitted[0][1]) == 4000
