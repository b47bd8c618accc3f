"""The aggregator's server checks the job token from a call's metadata before it reads the request, and bounds what
one Submit may buffer: a large upload without the token, or an authenticated one over the limit, is refused after a
few chunks, and the server's memory does not grow with what the sender offered."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from transport_fakes import ScriptedService

from fedscale_halor.transport import serde
from fedscale_halor.transport.auth_interceptor import TokenInterceptor
from fedscale_halor.transport.base import AuthenticationError
from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.grpc_wire import SERVICE_NAME, TOKEN_METADATA_KEY
from fedscale_halor.transport.messages import ExecutorInfo, Heartbeat
from fedscale_halor.transport.proto import aggregator_pb2 as pb

TOKEN = "job-token"
MIB = 2**20
CHUNK_BYTES = MIB
UPLOAD_CHUNKS = 400  # 400 MiB offered, never held whole by the sender
LIMIT_BYTES = 8 * MIB
# what a refused upload may cost the process (server and client both run here): far below the offered 400 MiB
RSS_GROWTH_LIMIT_BYTES = 100 * MIB
# the sender's pull of chunks stops once the call ends; a stream read to the end would take all of them
FEW_CHUNKS = UPLOAD_CHUNKS // 10
INFO = ExecutorInfo("executor_0", "node", "cpu")


class LazyUpload:
    """A Submit stream of ``chunks`` chunks of 1 MiB, made only as gRPC pulls them; counts how many it pulled."""

    def __init__(self, chunks: int = UPLOAD_CHUNKS, announced_bytes: int | None = None) -> None:
        self.chunks = chunks
        self.announced_bytes = chunks * CHUNK_BYTES if announced_bytes is None else announced_bytes
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for index in range(self.chunks):
            self.pulled += 1
            if index == 0:
                yield pb.Chunk(data=bytes(CHUNK_BYTES), total_bytes=self.announced_bytes,
                               executor_id="executor_0").SerializeToString()
            else:
                yield pb.Chunk(data=bytes(CHUNK_BYTES)).SerializeToString()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/self/status has no {field}")


def _peak_rss_growth(run: Callable[[], object]) -> int:
    """Bytes by which this process's resident memory rose at its peak while ``run`` ran."""
    try:
        # "5" resets the peak (VmHWM) to the current RSS, so an earlier test's peak does not hide this one's
        Path("/proc/self/clear_refs").write_text("5")
        peak_field = "VmHWM"
    except OSError:
        peak_field = "VmRSS"  # no reset here: only what is still resident afterwards can be measured
    before = _status_kib("VmRSS")
    run()
    return (_status_kib(peak_field) - before) * 1024


def _submit_raw(address: str, upload: LazyUpload, metadata: tuple[tuple[str, str], ...]) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        submit = channel.stream_unary(f"/{SERVICE_NAME}/Submit", response_deserializer=pb.Ack.FromString)
        with pytest.raises(grpc.RpcError) as refusal:
            submit(iter(upload), metadata=metadata, timeout=60.0)
    return refusal.value


@pytest.fixture
def service() -> ScriptedService:
    return ScriptedService(token=TOKEN)


@pytest.fixture
def address(service: ScriptedService) -> Iterator[str]:
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES, max_workers=4,
                              max_message_bytes=LIMIT_BYTES * 100, token=TOKEN) as server:
        yield f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(("case", "metadata"), [
    ("no token", ()),
    ("a wrong token", ((TOKEN_METADATA_KEY, "not-the-job-token"),)),
])
def test_a_large_upload_without_the_token_is_refused_before_it_is_read(
        case: str, metadata: tuple[tuple[str, str], ...], address: str, service: ScriptedService,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: 400 MiB announced and offered, within the server's limit, so only the token stands in the way
    upload = LazyUpload()
    refusals: list[grpc.RpcError] = []

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.transport"):
        growth = _peak_rss_growth(lambda: refusals.append(_submit_raw(address, upload, metadata)))
    with capsys.disabled():
        print(f"\n{case}: peak RSS growth {growth / MIB:.1f} MiB over a {UPLOAD_CHUNKS} MiB Submit "
              f"({upload.pulled} chunks pulled by gRPC)")

    # Assert
    [refusal] = refusals
    assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED
    assert upload.pulled <= FEW_CHUNKS
    assert growth < RSS_GROWTH_LIMIT_BYTES
    assert service.submitted == []
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "refused a Submit call from ipv4:127.0.0.1:" in warning.getMessage()
    assert f"it presented {case.replace('token', 'job token')}" in warning.getMessage()
    assert "job-token" not in caplog.text  # neither the job's token nor the wrong one is logged


def test_a_register_with_a_wrong_token_is_refused_and_the_service_never_sees_it(
        address: str, service: ScriptedService, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    executor = GrpcTransport(address, "not-the-job-token", chunk_bytes=CHUNK_BYTES)

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.transport"), \
            pytest.raises(AuthenticationError, match="missing or wrong job token"):
        executor.register(INFO)
    executor.close()

    # Assert
    assert service.registered == []
    assert "refused a Register call from" in caplog.text


def test_calls_with_the_right_token_reach_the_service(address: str, service: ScriptedService,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    executor = GrpcTransport(address, TOKEN, chunk_bytes=CHUNK_BYTES)

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.transport"):
        reply = executor.register(INFO)
        executor.submit("executor_0", Heartbeat())
    executor.close()

    # Assert
    assert reply.accepted
    assert service.registered == [INFO]
    assert service.submitted == [("executor_0", Heartbeat())]
    assert "refused" not in caplog.text


@pytest.mark.parametrize(("case", "announced_bytes"), [
    ("announced over the limit", UPLOAD_CHUNKS * CHUNK_BYTES),
    ("announced within the limit, carrying more", LIMIT_BYTES),
])
def test_an_authenticated_upload_over_the_limit_is_refused_as_it_crosses_it(
        case: str, announced_bytes: int, service: ScriptedService) -> None:
    # Prepare
    upload = LazyUpload(announced_bytes=announced_bytes)
    refusals: list[grpc.RpcError] = []

    # Execute
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES, max_workers=4,
                              max_message_bytes=LIMIT_BYTES, token=TOKEN) as server:
        growth = _peak_rss_growth(lambda: refusals.append(
            _submit_raw(f"127.0.0.1:{server.port}", upload, ((TOKEN_METADATA_KEY, TOKEN),))))
    print(f"{case}: peak RSS growth {growth / MIB:.1f} MiB, {upload.pulled} chunks pulled")

    # Assert
    [refusal] = refusals
    assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"limit is {LIMIT_BYTES} bytes" in (refusal.details() or "") \
        or f"limit of {LIMIT_BYTES} bytes" in (refusal.details() or "")
    assert upload.pulled <= LIMIT_BYTES // CHUNK_BYTES + FEW_CHUNKS
    assert growth < RSS_GROWTH_LIMIT_BYTES
    assert service.submitted == []


def test_joining_stops_at_the_chunk_that_crosses_the_limit() -> None:
    # Prepare: a stream that announces the limit, then keeps going
    pulled: list[int] = []

    def chunks() -> Iterator[pb.Chunk]:
        for index in range(100):
            pulled.append(index)
            yield pb.Chunk(data=bytes(10), total_bytes=30) if index == 0 else pb.Chunk(data=bytes(10))

    # Execute
    with pytest.raises(serde.MessageTooLargeError, match="more than the limit of 30 bytes"):
        serde.join_chunks(chunks(), max_bytes=30)

    # Assert: the fourth chunk crossed it; none after it was asked for
    assert pulled == [0, 1, 2, 3]


def test_the_interceptor_needs_a_token() -> None:
    with pytest.raises(ValueError, match="a job token is required"):
        TokenInterceptor("")
