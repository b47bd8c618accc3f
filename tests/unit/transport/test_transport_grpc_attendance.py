"""An executor's held connection (Attend): the service hears at once when the executor's process or its connection
is gone, and nothing when the server itself stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import ExecutorInfo
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.proto import aggregator_pb2_grpc as pb_grpc

REPO_ROOT = Path(__file__).resolve().parents[3]
INFO = ExecutorInfo(executor_id="executor_0", host="node-1", device="cpu")
HANG_UP_WAIT_S = 20.0  # generous for a loaded machine; a hang-up normally arrives within milliseconds


def _wait_until(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def serving() -> Iterator[tuple[ScriptedService, GrpcAggregatorServer]]:
    service = ScriptedService()
    server = GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    server.start()
    yield service, server
    server.stop()


def _attending(service: ScriptedService, server: GrpcAggregatorServer) -> GrpcTransport:
    """A transport whose executor registered and whose attendance the service has seen."""
    transport = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES)
    transport.register(INFO)
    assert _wait_until(lambda: service.attended_by == ["executor_0"], HANG_UP_WAIT_S)
    return transport


def test_a_registered_executor_attends_and_closing_its_transport_is_heard_as_a_hang_up(
        serving: tuple[ScriptedService, GrpcAggregatorServer]) -> None:
    service, server = serving
    transport = _attending(service, server)
    assert service.hung_up_by == []

    transport.close()

    assert service.hang_up.wait(HANG_UP_WAIT_S)
    assert service.hung_up_by == ["executor_0"]


_EXECUTOR_SCRIPT = textwrap.dedent("""
    import sys, time
    from fedscale_halor.transport.grpc_client import GrpcTransport
    from fedscale_halor.transport.messages import ExecutorInfo
    transport = GrpcTransport(sys.argv[1], "job-token", chunk_bytes=64 * 1024)
    transport.register(ExecutorInfo(executor_id="executor_7", host="node-7", device="cpu"))
    print("registered", flush=True)
    time.sleep(600)
""")


def test_an_executor_process_killed_with_sigkill_is_heard_as_a_hang_up(
        serving: tuple[ScriptedService, GrpcAggregatorServer]) -> None:
    # Prepare: an executor in its own process, as on a remote host, registered and attending
    service, server = serving
    process = subprocess.Popen([sys.executable, "-c", _EXECUTOR_SCRIPT, f"127.0.0.1:{server.port}"],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "registered"
        assert _wait_until(lambda: "executor_7" in service.attended_by, HANG_UP_WAIT_S)

        # Execute: kill it; it can say nothing, but its kernel closes its connection
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=HANG_UP_WAIT_S)

        # Assert
        assert service.hang_up.wait(HANG_UP_WAIT_S)
        assert service.hung_up_by == ["executor_7"]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_stopping_the_server_ends_attendance_without_a_hang_up_or_its_grace_period(
        serving: tuple[ScriptedService, GrpcAggregatorServer]) -> None:
    service, server = serving
    transport = _attending(service, server)

    started = time.monotonic()
    server.stop(grace_s=60.0)  # a held call left to the grace period would keep stop() waiting for a minute
    stopped_after_s = time.monotonic() - started
    transport.close()

    assert stopped_after_s < 30.0
    assert service.hung_up_by == []


def test_an_attendance_without_the_token_is_refused(serving: tuple[ScriptedService, GrpcAggregatorServer]) -> None:
    service, server = serving
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = pb_grpc.AggregatorStub(channel).Attend(pb.EventRequest(executor_id="executor_0"), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            list(call)

    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert service.attended_by == [] and service.hung_up_by == []
