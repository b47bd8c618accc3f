"""An executor's channel that loses its aggregator waits for it within the reconnect window, carries on with the
aggregator started again on the same port, and gives up with AggregatorGoneError when it does not come back."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.transport.base import AggregatorGoneError
from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import ExecutorInfo, Heartbeat, Idle, Shutdown

INFO = ExecutorInfo("executor_0", "node", "cpu")


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def test_a_poll_made_while_the_aggregator_is_down_gets_the_event_of_the_restarted_one(
        caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: an executor that has reached its aggregator, which then stops
    first = GrpcAggregatorServer(ScriptedService(), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    port = first.start()
    executor = GrpcTransport(f"127.0.0.1:{port}", "job-token", chunk_bytes=CHUNK_BYTES, reconnect_window_s=10.0)
    executor.register(INFO)
    first.stop(grace_s=0.1)
    events: list[object] = []

    # Execute: it polls (and a heartbeat is sent) while nobody listens; the aggregator is back on the same port
    # a second later
    with caplog.at_level(logging.INFO, logger="fedscale_halor.transport"):
        poller = threading.Thread(target=lambda: events.append(executor.next_event("executor_0")))
        sender = threading.Thread(target=lambda: executor.submit("executor_0", Heartbeat()))
        poller.start()
        sender.start()
        time.sleep(1.0)
        assert events == []  # still waiting
        second_service = ScriptedService(events=[Shutdown("the next event")])
        with GrpcAggregatorServer(second_service, "127.0.0.1", port, chunk_bytes=CHUNK_BYTES):
            poller.join(timeout=15)
            sender.join(timeout=15)
            following = executor.next_event("executor_0")
    executor.close()

    # Assert: the event, and a loss logged once (by whichever call noticed it first) and its end once
    assert not poller.is_alive() and not sender.is_alive()
    assert events == [Shutdown("the next event")]
    assert following == Idle(0.0)
    assert second_service.submitted == [("executor_0", Heartbeat())]
    assert len(_messages(caplog, "lost the aggregator")) == 1
    assert len(_messages(caplog, "answers again")) == 1


def test_an_aggregator_that_does_not_come_back_is_given_up_after_the_window(
        caplog: pytest.LogCaptureFixture) -> None:
    server = GrpcAggregatorServer(ScriptedService(), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    executor = GrpcTransport(f"127.0.0.1:{server.start()}", "job-token", chunk_bytes=CHUNK_BYTES,
                             reconnect_window_s=2.0)
    executor.register(INFO)
    server.stop(grace_s=0.1)

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="fedscale_halor.transport"), \
            pytest.raises(AggregatorGoneError, match=r"stopped answering .* reconnect_timeout 2 s"):
        executor.next_event("executor_0")
    waited_s = time.monotonic() - started
    executor.close()

    assert 2.0 <= waited_s < 6.0
    assert len(_messages(caplog, "lost the aggregator")) == 1
    assert _messages(caplog, "answers again") == []
