"""Fuzzing of the aggregator's gRPC endpoint: raw bytes through a generic channel call, and well-formed messages
with bad contents (unknown executors, rounds, clients, tokens; broken chunk streams). Every call is answered with a
status that names the fault (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED, NOT_FOUND), never INTERNAL or
a dropped connection, and the server keeps serving: a normal executor's calls still work afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.halor.messages import HALOR_CODECS, MaskedHistograms, PublicKeys
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport import serde
from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import SERVICE_NAME, GrpcAggregatorServer
from fedscale_halor.transport.grpc_wire import TOKEN_METADATA_KEY
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientUpdate,
    Completion,
    EvalOutcome,
    ExecutorInfo,
    Heartbeat,
    Idle,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import EvalResult, TrainResult

TOKEN = "job-token"
METADATA = ((TOKEN_METADATA_KEY, TOKEN),)
# each call is a round trip to a real server: a bounded number of them keeps the file within seconds
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ANSWERS_TO_BAD_INPUT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                        grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND}
_INT64 = st.integers(-(2**63), 2**63 - 1)
_TOKENS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24)


@pytest.fixture(scope="module")
def scripted_address() -> Iterator[str]:
    with GrpcAggregatorServer(ScriptedService(TOKEN), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              max_workers=4) as server:
        yield f"127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def board_address() -> Iterator[str]:
    """A server in front of a real work board on which executor_0 is registered and no round is running."""
    board = WorkBoard(long_poll_s=0.0, payloads=HALOR_PAYLOADS)
    with GrpcAggregatorServer(BoardService(board, TOKEN), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              max_workers=4) as server:
        board.add_executor("executor_0")
        yield f"127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def channel(scripted_address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(scripted_address) as opened:
        yield opened


@pytest.fixture(scope="module")
def board_channel(board_address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(board_address) as opened:
        yield opened


HALOR_PAYLOADS = PayloadRegistry(HALOR_CODECS)


def _method(name: str) -> str:
    return f"/{SERVICE_NAME}/{name}"


def _status_of_raw_call(channel: grpc.Channel, method: str, body: bytes | list[bytes],
                        metadata: tuple[tuple[str, str], ...] = METADATA) -> grpc.StatusCode:
    """Send raw bytes (no serializer on either side) and return the call's status."""
    try:
        if method == "Register":
            channel.unary_unary(_method(method))(body, metadata=metadata, timeout=10)
        elif method == "NextEvent":
            list(channel.unary_stream(_method(method))(body, metadata=metadata, timeout=10))
        else:
            channel.stream_unary(_method(method))(iter(body), metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _assert_still_serving(address: str) -> None:
    executor = GrpcTransport(address, TOKEN, chunk_bytes=CHUNK_BYTES, connect_timeout_s=5.0)
    try:
        assert executor.register(ExecutorInfo("executor_0", "node", "cpu")).accepted
        assert isinstance(executor.next_event("executor_0"), Idle)
        executor.submit("executor_0", Heartbeat())
    finally:
        executor.close()


# raw bytes --------------------------------------------------------------------------------------------------------
@FUZZ
@given(st.sampled_from(["Register", "NextEvent"]), st.binary(max_size=256))
def test_random_request_bytes_get_a_status_naming_the_fault(channel: grpc.Channel, method: str,
                                                            body: bytes) -> None:
    # random bytes can be a valid message (empty bytes are one): then the call simply succeeds
    assert _status_of_raw_call(channel, method, body) in {grpc.StatusCode.OK, *ANSWERS_TO_BAD_INPUT}


@FUZZ
@given(st.lists(st.binary(max_size=128), min_size=1, max_size=4))
def test_random_chunk_streams_get_a_status_naming_the_fault(channel: grpc.Channel, bodies: list[bytes]) -> None:
    assert _status_of_raw_call(channel, "Submit", bodies) in ANSWERS_TO_BAD_INPUT


@pytest.mark.parametrize("method", ["Register", "NextEvent", "Submit"])
def test_garbage_is_refused_as_invalid_argument_and_logged(channel: grpc.Channel, scripted_address: str,
                                                           method: str, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: bytes that are no protobuf message (a field tag of a wire type that does not exist)
    garbage = b"\xff\xff\xff\xff"

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.transport"):
        status = _status_of_raw_call(channel, method, [garbage] if method == "Submit" else garbage)

    # Assert
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f"refused a {method} call" in record.getMessage() and "cannot be parsed" in record.getMessage()
               for record in caplog.records)
    _assert_still_serving(scripted_address)


# well-formed messages, bad contents -------------------------------------------------------------------------------
@FUZZ
@given(st.lists(st.builds(pb.Chunk, data=st.binary(max_size=64), total_bytes=st.integers(0, 2**64 - 1),
                          executor_id=st.text(max_size=8), shared_file=st.sampled_from(["", "x.bin", "../etc"])),
                min_size=1, max_size=3))
def test_chunk_streams_with_bad_sizes_and_files_are_refused(channel: grpc.Channel, chunks: list[pb.Chunk]) -> None:
    status = _status_of_raw_call(channel, "Submit", [chunk.SerializeToString() for chunk in chunks])

    assert status in ANSWERS_TO_BAD_INPUT


def test_a_huge_announced_size_is_refused_before_the_stream_is_read(channel: grpc.Channel) -> None:
    first = pb.Chunk(data=b"x", total_bytes=2**63, executor_id="executor_0").SerializeToString()

    with pytest.raises(grpc.RpcError) as refusal:
        channel.stream_unary(_method("Submit"))(iter([first]), metadata=METADATA, timeout=10)

    assert refusal.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "was announced; the limit is" in (refusal.value.details() or "")


_COMPLETIONS: st.SearchStrategy[Completion] = st.one_of(
    st.builds(lambda client, round_index: ClientUpdate(TrainResult(client, round_index, 1, {"w": torch.zeros(2)},
                                                                   4, 1, 0.5, 0.3, 0.1)), _INT64, _INT64),
    st.builds(ClientFailure, _INT64, _INT64, st.text(max_size=10)),
    st.builds(EvalOutcome, _INT64, _INT64, _INT64, st.just(EvalResult(3, 1.0, 2, 3))),
    st.builds(lambda round_index: HALOR_PAYLOADS.wrap(PublicKeys(round_index, ((1, bytes(32)),))), _INT64),
    st.builds(lambda round_index: HALOR_PAYLOADS.wrap(MaskedHistograms(round_index, ())), _INT64),
)


@FUZZ
@given(_COMPLETIONS, st.sampled_from(["executor_0", "executor_404", "", "x" * 20_000]), _TOKENS | st.just(TOKEN))
def test_completions_for_unknown_rounds_clients_executors_and_tokens_are_answered(
        board_channel: grpc.Channel, completion: Completion, executor_id: str, token: str) -> None:
    # Prepare
    chunks = [chunk.SerializeToString()
              for chunk in serde.chunk_messages(serde.completion_to_parts(completion), CHUNK_BYTES, executor_id)]

    # Execute
    status = _status_of_raw_call(board_channel, "Submit", chunks, metadata=((TOKEN_METADATA_KEY, token),))

    # Assert: a wrong token is refused first; an unknown executor is not found; the registered one's stale or
    # foreign results are accepted and ignored by the board
    if token != TOKEN:
        assert status == grpc.StatusCode.UNAUTHENTICATED
    elif executor_id != "executor_0":
        assert status == grpc.StatusCode.NOT_FOUND
    else:
        assert status == grpc.StatusCode.OK


@FUZZ
@given(st.text(max_size=64) | st.just("y" * 50_000), _TOKENS | st.just(TOKEN))
def test_polls_of_unknown_executors_and_wrong_tokens_get_their_status(board_channel: grpc.Channel,
                                                                       executor_id: str, token: str) -> None:
    body = pb.EventRequest(executor_id=executor_id, shared_memory=True).SerializeToString()

    status = _status_of_raw_call(board_channel, "NextEvent", body, metadata=((TOKEN_METADATA_KEY, token),))

    expected = (grpc.StatusCode.UNAUTHENTICATED if token != TOKEN
                else grpc.StatusCode.OK if executor_id == "executor_0" else grpc.StatusCode.NOT_FOUND)
    assert status == expected


def test_a_refusal_that_echoes_a_huge_executor_id_keeps_its_status(board_channel: grpc.Channel) -> None:
    # Prepare: the board names the executor in its refusal; 100 kB of it would exceed gRPC's trailer limit
    body = pb.EventRequest(executor_id="z" * 100_000).SerializeToString()

    # Execute
    with pytest.raises(grpc.RpcError) as refusal:
        list(board_channel.unary_stream(_method("NextEvent"))(body, metadata=METADATA, timeout=10))

    # Assert
    assert refusal.value.code() == grpc.StatusCode.NOT_FOUND
    assert "has not registered" not in (refusal.value.details() or "")  # cut short, not dropped
    assert len(refusal.value.details() or "") < 2000


def test_both_servers_still_serve_an_executor_after_the_fuzzing(scripted_address: str, board_address: str) -> None:
    _assert_still_serving(scripted_address)
    _assert_still_serving(board_address)
