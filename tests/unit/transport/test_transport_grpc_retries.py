"""Transient failures of Register are retried by gRPC's retry policy from the channel's service config: a server
that fails the first calls with UNAVAILABLE is still answered, one that always fails is tried exactly the policy's
maxAttempts times. Streamed calls (a submission, a poll) are made again by the transport once the aggregator
answers (transport/grpc_wire.py says why)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
import torch
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.transport.grpc_client import AggregatorUnreachableError, GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.grpc_wire import RETRY_MAX_ATTEMPTS, SERVICE_NAME, client_options
from fedscale_halor.transport.messages import ClientUpdate, ExecutorInfo, Heartbeat, Idle
from fedscale_halor.types import TrainResult

INFO = ExecutorInfo("executor_0", "node", "cpu")


class FailFirstCalls(grpc.ServerInterceptor):
    """Answers the first ``failures`` calls of ``method`` with UNAVAILABLE before the service sees them."""

    def __init__(self, method: str, failures: int) -> None:
        self.method = method
        self.failures = failures
        self.calls = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler],
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if details.method != f"/{SERVICE_NAME}/{self.method}":
            return continuation(details)
        with self._lock:
            self.calls += 1
            failing = self.calls <= self.failures
        if not failing:
            return continuation(details)

        def refuse(_: object, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the aggregator is busy")

        handler_of = {"Register": grpc.unary_unary_rpc_method_handler,
                      "NextEvent": grpc.unary_stream_rpc_method_handler,
                      "Submit": grpc.stream_unary_rpc_method_handler}
        return handler_of[self.method](refuse)


@pytest.fixture
def serve() -> Iterator[Callable[[FailFirstCalls, ScriptedService], str]]:
    servers: list[GrpcAggregatorServer] = []

    def start(interceptor: FailFirstCalls, service: ScriptedService) -> str:
        server = GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES, interceptors=[interceptor])
        servers.append(server)
        return f"127.0.0.1:{server.start()}"

    yield start
    for server in servers:
        server.stop()


def test_the_channel_carries_a_retry_policy_for_transient_codes() -> None:
    options = dict(client_options(CHUNK_BYTES, reconnect_backoff_max_ms=1000))

    [method_config] = json.loads(str(options["grpc.service_config"]))["methodConfig"]

    assert options["grpc.enable_retries"] == 1
    assert method_config["retryPolicy"]["maxAttempts"] == RETRY_MAX_ATTEMPTS
    assert set(method_config["retryPolicy"]["retryableStatusCodes"]) == {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert {name["method"] for name in method_config["name"]} == {"Register"}


def test_a_call_failing_its_first_attempts_with_unavailable_succeeds_by_the_policy(
        serve: Callable[[FailFirstCalls, ScriptedService], str]) -> None:
    # Prepare: two refusals, fewer than the policy's attempts; a connect timeout of 0 would make any retry by the
    # transport itself fail, so only gRPC's retries can carry the call through
    interceptor = FailFirstCalls("Register", failures=2)
    service = ScriptedService()
    executor = GrpcTransport(serve(interceptor, service), "job-token", chunk_bytes=CHUNK_BYTES,
                             connect_timeout_s=0.0, reconnect_window_s=0.0)

    # Execute
    reply = executor.register(INFO)
    executor.close()

    # Assert
    assert interceptor.calls == 3
    assert reply.accepted and service.registered == [INFO]


def test_a_submit_refused_with_unavailable_is_sent_again_by_the_transport(
        serve: Callable[[FailFirstCalls, ScriptedService], str]) -> None:
    # Prepare: two refusals of a heartbeat
    interceptor = FailFirstCalls("Submit", failures=2)
    service = ScriptedService()
    executor = GrpcTransport(serve(interceptor, service), "job-token", chunk_bytes=CHUNK_BYTES,
                             reconnect_window_s=10.0)
    executor.register(INFO)

    # Execute
    executor.submit("executor_0", Heartbeat())
    executor.close()

    # Assert: three attempts, one heartbeat delivered
    assert interceptor.calls == 3
    assert service.submitted == [("executor_0", Heartbeat())]


def test_a_call_that_always_fails_gives_up_after_the_policys_attempts(
        serve: Callable[[FailFirstCalls, ScriptedService], str]) -> None:
    interceptor = FailFirstCalls("Register", failures=1000)
    executor = GrpcTransport(serve(interceptor, ScriptedService()), "job-token", chunk_bytes=CHUNK_BYTES,
                             connect_timeout_s=0.0)

    with pytest.raises(AggregatorUnreachableError, match="the aggregator is busy"):
        executor.register(INFO)
    executor.close()

    assert interceptor.calls == RETRY_MAX_ATTEMPTS


def test_a_refused_update_larger_than_grpc_s_retry_buffer_is_sent_again_whole_by_the_transport(
        serve: Callable[[FailFirstCalls, ScriptedService], str]) -> None:
    # Prepare: an update of 800 kB, beyond gRPC's 256 KiB per-call retry buffer, refused once
    interceptor = FailFirstCalls("Submit", failures=1)
    service = ScriptedService()
    weights = {"w": torch.randn(200_000)}
    update = ClientUpdate(TrainResult(7, 1, 1, weights, 40, 5, 0.5, 0.3, 0.1))
    executor = GrpcTransport(serve(interceptor, service), "job-token", chunk_bytes=CHUNK_BYTES,
                             reconnect_window_s=10.0, shared_memory=False)
    executor.register(INFO)

    # Execute
    executor.submit("executor_0", update)
    executor.close()

    # Assert: one refused attempt, one whole resend, and the service got every byte
    assert interceptor.calls == 2
    [(_, received)] = service.submitted
    assert isinstance(received, ClientUpdate) and torch.equal(received.result.weights["w"], weights["w"])


def test_a_poll_refused_as_unavailable_is_made_again_by_the_transport(
        serve: Callable[[FailFirstCalls, ScriptedService], str]) -> None:
    interceptor = FailFirstCalls("NextEvent", failures=2)
    service = ScriptedService(events=[Idle(0.5)])
    executor = GrpcTransport(serve(interceptor, service), "job-token", chunk_bytes=CHUNK_BYTES,
                             reconnect_window_s=10.0)
    executor.register(INFO)

    event = executor.next_event("executor_0")
    executor.close()

    assert event == Idle(0.5)
    assert interceptor.calls == 3
    assert service.polled_by == ["executor_0"]  # the refused polls never reached the service
