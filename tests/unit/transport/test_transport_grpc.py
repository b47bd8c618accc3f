from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
import torch
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport import serde
from fedscale_halor.transport.base import AuthenticationError
from fedscale_halor.transport.framing import Buffer
from fedscale_halor.transport.grpc_client import (
    AggregatorGoneError,
    AggregatorUnreachableError,
    GrpcTransport,
    RemoteCallError,
)
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer, Traffic
from fedscale_halor.transport.grpc_wire import TOKEN_METADATA_KEY
from fedscale_halor.transport.messages import (
    ClientTrain,
    ClientUpdate,
    EvalOutcome,
    Event,
    ExecutorInfo,
    Idle,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.proto import aggregator_pb2_grpc as pb_grpc
from fedscale_halor.transport.shared_memory import NONCE_FILE, SHARED_MIN_BYTES, SharedFolder
from fedscale_halor.types import EvalResult, TrainResult, TrainTask

INFO = ExecutorInfo(executor_id="executor_0", host="node-1", device="cpu")


def _transport(address: str, token: str = "job-token", **options: float) -> GrpcTransport:
    return GrpcTransport(address, token, chunk_bytes=CHUNK_BYTES, **options)


@pytest.fixture
def transport(served: str) -> Iterator[GrpcTransport]:
    channel = _transport(served)
    yield channel
    channel.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_register_poll_and_submit_reach_the_service_intact(scripted_service: ScriptedService,
                                                           transport: GrpcTransport) -> None:
    # Prepare: a script of events, one with weights larger than a chunk
    weights = {"layer.weight": torch.randn(300, 100), "bn.num_batches_tracked": torch.tensor(5)}
    task = TrainTask(round=1, client_id=7, model_version=1, learning_rate=0.1, local_steps=5, batch_size=16, seed=99)
    scripted_service.events.extend([UpdateModel(1, weights), ClientTrain(1, 1, (task,)), Shutdown("done")])
    update = ClientUpdate(TrainResult(client_id=7, round=1, model_version=1, weights=weights, num_samples=40,
                                      num_steps=5, loss_mean=0.5, loss_square_mean=0.3, wall_time_s=0.1))
    outcome = EvalOutcome(round=1, model_version=1, shard_index=0, result=EvalResult(10, 4.5, 8, 10))

    # Execute
    reply = transport.register(INFO)
    events = [transport.next_event("executor_0") for _ in range(4)]
    transport.submit("executor_0", update)
    transport.submit("executor_0", outcome)

    # Assert
    assert reply.accepted and reply.reason == "welcome executor_0"
    assert scripted_service.registered == [INFO]
    assert scripted_service.polled_by == ["executor_0"] * 4
    first = events[0]
    assert isinstance(first, UpdateModel) and first.version == 1
    assert all(torch.equal(first.weights[name], weights[name]) for name in weights)
    assert events[1:] == [ClientTrain(1, 1, (task,)), Shutdown("done"), Idle(0.0)]
    [(update_sender, received_update), (outcome_sender, received_outcome)] = scripted_service.submitted
    assert (update_sender, outcome_sender) == ("executor_0", "executor_0")
    assert isinstance(received_update, ClientUpdate)
    assert torch.equal(received_update.result.weights["layer.weight"], weights["layer.weight"])
    assert received_update.result.num_samples == 40
    assert received_outcome == outcome


def test_a_wrong_token_is_refused_with_the_servers_reason(scripted_service: ScriptedService, served: str) -> None:
    intruder = _transport(served, token="guessed")

    with pytest.raises(AuthenticationError, match="wrong job token"):
        intruder.register(INFO)
    with pytest.raises(AuthenticationError):
        intruder.next_event("executor_0")

    assert scripted_service.registered == []
    intruder.close()


def test_the_board_service_refuses_and_logs_a_wrong_token_over_grpc(caplog: pytest.LogCaptureFixture) -> None:
    board = WorkBoard(long_poll_s=0.0)
    with GrpcAggregatorServer(BoardService(board, "s3cret"), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES) as server:
        intruder = _transport(f"127.0.0.1:{server.port}", token="not-the-token")
        with caplog.at_level(logging.WARNING, logger="fedscale_halor.aggregator"), \
                pytest.raises(AuthenticationError, match="executor executor_9 on intruder: missing or wrong job token"):
            intruder.register(ExecutorInfo("executor_9", "intruder", "cpu"))
        intruder.close()

    assert board.executor_count == 0
    assert any("refused executor executor_9" in record.getMessage() for record in caplog.records)


def test_an_unregistered_executor_gets_a_key_error_as_over_the_memory_transport() -> None:
    board = WorkBoard(long_poll_s=0.0)
    with GrpcAggregatorServer(BoardService(board, "s3cret"), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES) as server:
        stranger = _transport(f"127.0.0.1:{server.port}", token="s3cret")
        with pytest.raises(KeyError, match="executor 'executor_5' has not registered"):
            stranger.next_event("executor_5")
        stranger.close()


def test_a_failing_service_reaches_the_executor_as_a_remote_call_error(scripted_service: ScriptedService,
                                                                       transport: GrpcTransport) -> None:
    scripted_service.fail_with = lambda: RuntimeError("the board exploded")

    with pytest.raises(RemoteCallError, match=r"NextEvent .* INTERNAL: RuntimeError: the board exploded"):
        transport.next_event("executor_0")


def test_malformed_chunks_are_refused_as_invalid_argument(scripted_service: ScriptedService, served: str) -> None:
    with grpc.insecure_channel(served) as channel:
        stub = pb_grpc.AggregatorStub(channel)
        garbage = iter([pb.Chunk(data=b"\xff\xff\xff", total_bytes=3, executor_id="executor_0")])
        truncated = iter([pb.Chunk(data=b"\x0a", total_bytes=10, executor_id="executor_0")])

        with pytest.raises(grpc.RpcError) as garbage_refusal:
            stub.Submit(garbage, metadata=((TOKEN_METADATA_KEY, "job-token"),))
        with pytest.raises(grpc.RpcError) as truncated_refusal:
            stub.Submit(truncated, metadata=((TOKEN_METADATA_KEY, "job-token"),))

    assert garbage_refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Completion cannot be parsed" in (garbage_refusal.value.details() or "")
    assert truncated_refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncated: 1 of the 10 announced bytes" in (truncated_refusal.value.details() or "")
    assert scripted_service.submitted == []


def test_a_completion_over_the_servers_limit_is_refused(scripted_service: ScriptedService) -> None:
    update = ClientUpdate(TrainResult(client_id=1, round=0, model_version=0, weights={"w": torch.zeros(10_000)},
                                      num_samples=1, num_steps=1, loss_mean=0.0, loss_square_mean=0.0,
                                      wall_time_s=0.0))
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              max_message_bytes=1000) as server:
        sender = _transport(f"127.0.0.1:{server.port}")
        with pytest.raises(serde.MessageTooLargeError, match=r"Submit refused by the aggregator: .* limit is 1000"):
            sender.submit("executor_0", update)
        sender.close()

    assert scripted_service.submitted == []


def test_long_polls_of_many_executors_are_served_at_once() -> None:
    class SlowPolls(ScriptedService):
        def next_event(self, token: str, executor_id: str) -> Idle:
            time.sleep(0.5)  # the board's long poll
            return Idle(0.0)

    with GrpcAggregatorServer(SlowPolls(), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES, max_workers=16) as server:
        transports = [_transport(f"127.0.0.1:{server.port}") for _ in range(8)]
        started = time.monotonic()
        pollers = [threading.Thread(target=channel.next_event, args=(f"executor_{rank}",))
                   for rank, channel in enumerate(transports)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        elapsed = time.monotonic() - started
        for channel in transports:
            channel.close()

    assert elapsed < 2.0  # eight polls in sequence would take 4 s


def test_the_client_raises_aggregator_gone_after_the_server_stops(scripted_service: ScriptedService) -> None:
    server = GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    executor = _transport(f"127.0.0.1:{server.start()}", reconnect_window_s=0.3)
    executor.register(INFO)

    server.stop(grace_s=0.1)

    with pytest.raises(AggregatorGoneError, match="stopped answering"):
        executor.next_event("executor_0")
    with pytest.raises(ConnectionError):
        executor.submit("executor_0", EvalOutcome(0, 0, 0, EvalResult()))
    executor.close()


def test_a_poll_in_flight_when_the_server_stops_raises_aggregator_gone() -> None:
    polling = threading.Event()

    class BlockedPoll(ScriptedService):
        def next_event(self, token: str, executor_id: str) -> Idle:
            polling.set()
            time.sleep(5.0)  # still waiting for work when the aggregator shuts down
            return Idle(0.0)

    server = GrpcAggregatorServer(BlockedPoll(), "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    executor = _transport(f"127.0.0.1:{server.start()}", reconnect_window_s=0.3)
    executor.register(INFO)
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            executor.next_event("executor_0")
        except BaseException as error:
            outcome.append(error)

    poller = threading.Thread(target=poll)
    poller.start()
    assert polling.wait(timeout=10)
    server.stop(grace_s=0.1)
    poller.join(timeout=30)
    executor.close()

    assert len(outcome) == 1 and isinstance(outcome[0], AggregatorGoneError), outcome


class _CancelledCall(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.CANCELLED

    def details(self) -> str:
        return "Cancelling all calls"


def test_a_call_cancelled_by_a_stopping_server_is_retried_like_an_unavailable_one(
        scripted_service: ScriptedService, served: str) -> None:
    executor = _transport(served, reconnect_window_s=5.0)
    executor.register(INFO)
    real_stub = executor._stub
    attempts: list[str] = []

    class CancelOnce:
        def NextEvent(self, request: object, metadata: object) -> object:  # noqa: N802 - the gRPC method name
            attempts.append("poll")
            if len(attempts) == 1:
                raise _CancelledCall()
            return real_stub.NextEvent(request, metadata=metadata)

    scripted_service.events.append(Idle(0.25))
    executor._stub = CancelOnce()  # type: ignore[assignment]

    assert executor.next_event("executor_0") == Idle(0.25)
    assert attempts == ["poll", "poll"]
    executor.close()


def test_register_waits_for_an_aggregator_that_starts_late(scripted_service: ScriptedService) -> None:
    port = _free_port()
    executor = _transport(f"127.0.0.1:{port}", connect_timeout_s=30.0)
    replies: list[object] = []
    registering = threading.Thread(target=lambda: replies.append(executor.register(INFO)))
    registering.start()

    time.sleep(0.8)
    assert replies == []  # still waiting: nobody listens yet
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", port, chunk_bytes=CHUNK_BYTES):
        registering.join(timeout=10.0)

    assert not registering.is_alive()
    assert scripted_service.registered == [INFO]
    executor.close()


def test_register_gives_up_when_no_aggregator_comes_up() -> None:
    port = _free_port()
    executor = _transport(f"127.0.0.1:{port}", connect_timeout_s=0.5)

    started = time.monotonic()
    expected = re.escape(f"no aggregator answered at 127.0.0.1:{port} within 0.5 s")
    with pytest.raises(AggregatorUnreachableError, match=expected):
        executor.register(INFO)

    assert time.monotonic() - started < 3.0
    executor.close()


def test_a_server_cannot_bind_a_port_already_served(scripted_service: ScriptedService, served: str) -> None:
    port = int(served.rsplit(":", 1)[1])

    with pytest.raises(OSError, match=re.escape(f"cannot bind the aggregator's gRPC server to 127.0.0.1:{port}")):
        GrpcAggregatorServer(scripted_service, "127.0.0.1", port, chunk_bytes=CHUNK_BYTES).start()


def test_a_server_starts_once_and_stops_idempotently(scripted_service: ScriptedService) -> None:
    server = GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.port

    port = server.start()
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    server.stop()

    assert port > 0


def test_an_event_over_the_executors_limit_is_refused(scripted_service: ScriptedService, served: str) -> None:
    scripted_service.events.append(UpdateModel(version=1, weights={"w": torch.zeros(100_000)}))
    executor = GrpcTransport(served, "job-token", chunk_bytes=CHUNK_BYTES, max_message_bytes=10_000)

    with pytest.raises(serde.MessageTooLargeError, match="the limit is 10000 bytes"):
        executor.next_event("executor_0")

    assert executor.next_event("executor_0") == Idle(0.0)  # the channel still works after the refusal
    executor.close()


def test_the_server_counts_the_payload_bytes_each_way(scripted_service: ScriptedService) -> None:
    weights = {"w": torch.randn(1000)}
    update = ClientUpdate(TrainResult(client_id=1, round=1, model_version=1, weights=weights, num_samples=4,
                                      num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0))
    scripted_service.events.extend([UpdateModel(1, weights), Shutdown("done")])
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES) as server:
        executor = _transport(f"127.0.0.1:{server.port}")
        executor.register(INFO)
        executor.next_event("executor_0")
        executor.next_event("executor_0")
        executor.submit("executor_0", update)
        executor.close()
        traffic = server.traffic

    expected_down = len(serde.event_to_bytes(UpdateModel(1, weights))) + len(serde.event_to_bytes(Shutdown("done")))
    assert traffic.bytes_to_executors == expected_down
    assert traffic.bytes_from_executors == len(serde.completion_to_bytes(update))
    assert traffic.bytes_from_executors > 4000  # the 1000 float32 weights are in there


# shared memory: executors on the aggregator's host ----------------------------------------------------------------
def _shared_folder_under(parent: Path) -> Path:
    [folder] = parent.glob("fedscale_halor_*")
    return folder


def _update_with(weights: dict[str, torch.Tensor]) -> ClientUpdate:
    return ClientUpdate(TrainResult(client_id=7, round=1, model_version=1, weights=weights, num_samples=40,
                                    num_steps=5, loss_mean=0.5, loss_square_mean=0.3, wall_time_s=0.1))


@pytest.fixture
def shared_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(sender, size) of every payload placed in a shared folder, by the server (it runs in this process) as a file
    or by an executor for one call (in its slot)."""
    writes: list[tuple[str, int]] = []
    write, sending = SharedFolder.write, SharedFolder.sending

    def recording_write(self: SharedFolder, parts: Sequence[Buffer], sender: str) -> tuple[str, int]:
        name, size = write(self, parts, sender)
        writes.append((sender, size))
        return name, size

    @contextlib.contextmanager
    def recording_sending(self: SharedFolder, parts: Sequence[Buffer], sender: str) -> Iterator[tuple[str, int]]:
        with sending(self, parts, sender) as (name, size):
            writes.append((sender, size))
            yield name, size

    monkeypatch.setattr(SharedFolder, "write", recording_write)
    monkeypatch.setattr(SharedFolder, "sending", recording_sending)
    return writes


def _poll_then_submit(service: ScriptedService, parent: Path, update: ClientUpdate, *,
                      shared_memory: bool) -> tuple[Event, Traffic, list[str]]:
    """One executor polls one event and submits ``update`` to a server offering a shared folder under ``parent``;
    returns the event, the server's traffic and what is left in the folder."""
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(parent)) as server:
        folder = _shared_folder_under(parent)
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES,
                                 shared_memory=shared_memory)
        executor.register(INFO)
        event = executor.next_event("executor_0")
        executor.submit("executor_0", update)
        executor.close()
        return event, server.traffic, sorted(entry.name for entry in folder.iterdir())


def test_an_executor_on_the_aggregators_host_passes_large_payloads_as_shared_files(
        scripted_service: ScriptedService, tmp_path: Path, shared_writes: list[tuple[str, int]]) -> None:
    # Prepare: a model of 800 kB, over the size below which payloads are streamed
    weights = {"w": torch.randn(200_000)}
    update = _update_with(weights)
    scripted_service.events.append(UpdateModel(1, weights))
    event_bytes = len(serde.event_to_bytes(UpdateModel(1, weights)))
    update_bytes = len(serde.completion_to_bytes(update))

    # Execute
    event, traffic, left_in_folder = _poll_then_submit(scripted_service, tmp_path, update, shared_memory=True)

    # Assert
    assert min(event_bytes, update_bytes) >= SHARED_MIN_BYTES
    assert shared_writes == [("aggregator", event_bytes), ("executor_0", update_bytes)]
    assert isinstance(event, UpdateModel) and event.version == 1
    assert torch.equal(event.weights["w"], weights["w"])
    [(sender, received)] = scripted_service.submitted
    assert sender == "executor_0"
    assert isinstance(received, ClientUpdate)
    assert torch.equal(received.result.weights["w"], weights["w"])
    assert received.result.num_samples == 40 and received.result.loss_mean == 0.5
    assert traffic == Traffic(bytes_to_executors=event_bytes, bytes_from_executors=update_bytes)
    assert left_in_folder == [NONCE_FILE]  # every payload file was taken, and the slot removed on close


def test_an_executor_without_shared_memory_streams_to_a_server_that_offers_it(
        scripted_service: ScriptedService, tmp_path: Path, shared_writes: list[tuple[str, int]]) -> None:
    weights = {"w": torch.randn(200_000)}
    update = _update_with(weights)
    scripted_service.events.append(UpdateModel(1, weights))

    event, traffic, left_in_folder = _poll_then_submit(scripted_service, tmp_path, update, shared_memory=False)

    assert shared_writes == []
    assert isinstance(event, UpdateModel) and torch.equal(event.weights["w"], weights["w"])
    [(_, received)] = scripted_service.submitted
    assert isinstance(received, ClientUpdate) and torch.equal(received.result.weights["w"], weights["w"])
    assert traffic == Traffic(bytes_to_executors=len(serde.event_to_bytes(UpdateModel(1, weights))),
                              bytes_from_executors=len(serde.completion_to_bytes(update)))
    assert left_in_folder == [NONCE_FILE]


def test_payloads_below_the_threshold_are_streamed_even_on_the_aggregators_host(
        scripted_service: ScriptedService, tmp_path: Path, shared_writes: list[tuple[str, int]]) -> None:
    # Prepare: small payloads both ways, then one large update to show that the executor did attach
    small = {"w": torch.randn(1000)}
    large = {"w": torch.randn(200_000)}
    scripted_service.events.append(UpdateModel(1, small))

    # Execute
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path)) as server:
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES, shared_memory=True)
        executor.register(INFO)
        event = executor.next_event("executor_0")
        executor.submit("executor_0", _update_with(small))
        writes_of_small_payloads = list(shared_writes)
        executor.submit("executor_0", _update_with(large))
        executor.close()

    # Assert
    assert len(serde.event_to_bytes(UpdateModel(1, small))) < SHARED_MIN_BYTES
    assert len(serde.completion_to_bytes(_update_with(small))) < SHARED_MIN_BYTES
    assert writes_of_small_payloads == []
    assert shared_writes == [("executor_0", len(serde.completion_to_bytes(_update_with(large))))]
    assert isinstance(event, UpdateModel) and torch.equal(event.weights["w"], small["w"])
    [(_, received_small), (_, received_large)] = scripted_service.submitted
    assert isinstance(received_small, ClientUpdate) and torch.equal(received_small.result.weights["w"], small["w"])
    assert isinstance(received_large, ClientUpdate) and torch.equal(received_large.result.weights["w"], large["w"])


def test_register_tells_the_executor_the_shared_folder_and_its_nonce(scripted_service: ScriptedService,
                                                                     tmp_path: Path) -> None:
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path)) as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        folder = _shared_folder_under(tmp_path)
        reply = pb_grpc.AggregatorStub(channel).Register(serde.info_to_proto(INFO),
                                                         metadata=((TOKEN_METADATA_KEY, "job-token"),))

        assert reply.accepted
        assert reply.shared_folder == str(folder)
        assert reply.shared_nonce == (folder / NONCE_FILE).read_text()


def test_stopping_the_server_deletes_its_shared_folder(scripted_service: ScriptedService, tmp_path: Path) -> None:
    server = GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                                  shared_memory_parent=str(tmp_path))
    server.start()
    folder = _shared_folder_under(tmp_path)
    (folder / "executor_0-uncollected.bin").write_bytes(b"never taken")
    existed = folder.is_dir()

    server.stop()
    server.stop()

    assert existed
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_server_without_a_usable_shared_folder_streams_to_every_executor(
        scripted_service: ScriptedService, tmp_path: Path, shared_writes: list[tuple[str, int]]) -> None:
    weights = {"w": torch.randn(200_000)}
    scripted_service.events.append(UpdateModel(1, weights))

    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path / "missing")) as server:
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES, shared_memory=True)
        executor.register(INFO)
        event = executor.next_event("executor_0")
        executor.submit("executor_0", _update_with(weights))
        executor.close()

    assert shared_writes == []
    assert list(tmp_path.iterdir()) == []
    assert isinstance(event, UpdateModel) and torch.equal(event.weights["w"], weights["w"])
    [(_, received)] = scripted_service.submitted
    assert isinstance(received, ClientUpdate) and torch.equal(received.result.weights["w"], weights["w"])


def test_a_shared_file_outside_the_folder_or_without_a_folder_is_refused(scripted_service: ScriptedService,
                                                                         served: str, tmp_path: Path) -> None:
    # Prepare: a file next to the server's folder, and a server without one (``served``)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(serde.completion_to_bytes(EvalOutcome(1, 1, 0, EvalResult(10, 4.5, 8, 10))))
    size = outside.stat().st_size
    metadata = ((TOKEN_METADATA_KEY, "job-token"),)

    # Execute
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path)) as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, \
            pytest.raises(grpc.RpcError) as escape:
        pb_grpc.AggregatorStub(channel).Submit(iter([serde.shared_file_chunk("../outside.bin", size, "executor_0")]),
                                               metadata=metadata)
    with grpc.insecure_channel(served) as channel, pytest.raises(grpc.RpcError) as no_folder:
        pb_grpc.AggregatorStub(channel).Submit(iter([serde.shared_file_chunk("executor_0-x.bin", size, "executor_0")]),
                                               metadata=metadata)

    # Assert
    assert escape.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'../outside.bin' is not one this transport writes" in (escape.value.details() or "")
    assert no_folder.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shares no folder" in (no_folder.value.details() or "")
    assert outside.stat().st_size == size
    assert scripted_service.submitted == []
