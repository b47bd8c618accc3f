from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from fedscale_halor.aggregation.partial import SumRule
from fedscale_halor.transport import serde, tensor_codec
from fedscale_halor.transport.framing import frame_parts
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    EvalFailure,
    EvalOutcome,
    Event,
    ExecutorInfo,
    Idle,
    ModelTest,
    PartialUpdate,
    RegisterReply,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights


def _model_weights() -> dict[str, torch.Tensor]:
    # the state-dict shapes a real model has: float32 parameters, an int64 BatchNorm counter (0-dim), half tensors
    return {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "bn.running_mean": torch.randn(4),
        "bn.num_batches_tracked": torch.tensor(17, dtype=torch.int64),
        "head.weight": torch.randn(10, 4).to(torch.float16),
        "head.bias": torch.zeros(10, dtype=torch.bfloat16),
        "a.mask": torch.tensor([True, False, True]),
        "empty": torch.empty(0, 5),
    }


def _assert_same_weights(received: Weights, sent: Weights) -> None:
    assert list(received) == list(sent)  # names keep their order, although safetensors sorts them
    for name, tensor in sent.items():
        assert received[name].dtype == tensor.dtype, name
        assert received[name].shape == tensor.shape, name
        assert torch.equal(received[name], tensor), name


def _task(client_id: int) -> TrainTask:
    return TrainTask(round=3, client_id=client_id, model_version=2, learning_rate=0.05, local_steps=20,
                     batch_size=32, seed=(2**63) - 12345)


@pytest.mark.parametrize("event", [
    ClientTrain(round=3, model_version=2, tasks=(_task(7), _task(11))),
    ClientTrain(round=0, model_version=0, tasks=()),
    ModelTest(round=5, model_version=4, shard_index=1, shard_count=3),
    ModelTest(round=5, model_version=4, shard_index=1, shard_count=3, cohort=2),
    ClientTrain(round=3, model_version=2, tasks=(_task(7),), cohort=1),
    ClientTrain(round=3, model_version=2, tasks=(replace(_task(7), summed=True), _task(8)), sum_rule=SumRule(False)),
    ClientTrain(round=3, model_version=2, tasks=(replace(_task(7), summed=True),), sum_rule=SumRule(True)),
    Idle(wait_s=0.25),
    Idle(wait_s=0.0),
    Shutdown(reason="the job is over"),
    Shutdown(reason="ünïcode reason ✓"),
], ids=lambda event: type(event).__name__)
def test_events_without_tensors_round_trip_exactly(event: Event) -> None:
    assert serde.event_from_bytes(serde.event_to_bytes(event)) == event


def test_update_model_round_trips_weights_with_their_dtypes_and_order() -> None:
    weights = _model_weights()

    received = serde.event_from_bytes(serde.event_to_bytes(UpdateModel(version=9, weights=weights, cohort=3)))

    assert isinstance(received, UpdateModel)
    assert (received.version, received.cohort) == (9, 3)
    _assert_same_weights(received.weights, weights)


def test_update_model_with_no_tensors_round_trips() -> None:
    received = serde.event_from_bytes(serde.event_to_bytes(UpdateModel(version=0, weights={})))

    assert received == UpdateModel(version=0, weights={})


def test_tied_and_non_contiguous_tensors_are_sent_as_their_values() -> None:
    shared = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    weights = {"embedding.weight": shared, "decoder.weight": shared, "transposed": shared.t(),
               "strided": shared[:, ::2]}

    received = serde.event_from_bytes(serde.event_to_bytes(UpdateModel(version=1, weights=weights)))

    assert isinstance(received, UpdateModel)
    _assert_same_weights(received.weights, weights)


def test_client_update_round_trips_exactly() -> None:
    weights = _model_weights()
    result = TrainResult(client_id=42, round=3, model_version=2, weights=weights, num_samples=120, num_steps=20,
                         loss_mean=0.731, loss_square_mean=0.5812345678901234, wall_time_s=1.25)

    received = serde.completion_from_bytes(serde.completion_to_bytes(ClientUpdate(result)))

    assert isinstance(received, ClientUpdate)
    _assert_same_weights(received.result.weights, weights)
    sent_fields = {**vars(result), "weights": None}
    assert {**vars(received.result), "weights": None} == sent_fields


def test_a_partial_update_round_trips_its_sums_and_its_weightless_results() -> None:
    results = tuple(TrainResult(client_id=c, round=3, model_version=2, weights={}, num_samples=10 + c, num_steps=20,
                                loss_mean=0.731, loss_square_mean=0.5812345678901234, wall_time_s=1.25)
                    for c in (9, 4))
    sums = {"high.w": torch.tensor([2**60, -3, 0]), "low.w": torch.tensor([1, 2, 3]), "bound.w": torch.tensor(7),
            "coefficients.integral": torch.tensor(27), "coefficients.fractional": torch.tensor(0)}

    received = serde.completion_from_bytes(serde.completion_to_bytes(PartialUpdate(3, 2, results, sums)))

    assert isinstance(received, PartialUpdate) and (received.round, received.model_version) == (3, 2)
    assert received.results == results
    _assert_same_weights(received.sums, sums)


def test_a_partial_update_with_a_clients_weights_is_refused_both_ways() -> None:
    result = TrainResult(client_id=1, round=3, model_version=2, weights={"w": torch.zeros(2)}, num_samples=1,
                         num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)
    with pytest.raises(TypeError, match="without weights"):
        serde.completion_to_bytes(PartialUpdate(3, 2, (result,), {}))
    blobs: list = []
    message = pb.Completion(partial_update=pb.PartialUpdate(round=3, model_version=2, results=[pb.TrainResult(
        client_id=1, weights=serde.weights_to_proto(result.weights, blobs))],
        sums=serde.weights_to_proto({}, blobs)))
    with pytest.raises(serde.MalformedMessageError, match=r"client 1\) carries weights"):
        serde.completion_from_bytes(b"".join(frame_parts(message.SerializeToString(), blobs)))


def test_a_client_train_that_sums_without_a_rule_is_malformed() -> None:
    message = pb.Event(client_train=pb.ClientTrain(round=3, model_version=2, tasks=[pb.TrainTask(client_id=5,
                                                                                                 summed=True)]))
    with pytest.raises(serde.MalformedMessageError, match="round 3 sums clients' updates but carries no sum_rule"):
        serde.event_from_bytes(b"".join(frame_parts(message.SerializeToString(), [])))


@pytest.mark.parametrize("completion", [
    ClientFailure(round=4, client_id=8, error="RuntimeError('out of memory')"),
    ClientFailure(round=4, client_id=8, error="IndexError: Target 12 is out of bounds.", fatal=True),
    EvalFailure(round=3, model_version=2, shard_index=1, error="IndexError: Target 12 is out of bounds.", fatal=True),
    EvalFailure(round=3, model_version=2, shard_index=0, error="OutOfMemoryError: CUDA out of memory"),
    EvalOutcome(round=5, model_version=4, shard_index=2,
                result=EvalResult(num_samples=333, loss_sum=123.456789, top1_correct=300, top5_correct=330)),
    EvalOutcome(round=0, model_version=0, shard_index=0, result=EvalResult()),
], ids=lambda completion: type(completion).__name__)
def test_completions_without_tensors_round_trip_exactly(completion: Completion) -> None:
    assert serde.completion_from_bytes(serde.completion_to_bytes(completion)) == completion


def test_executor_info_and_register_reply_round_trip() -> None:
    info = ExecutorInfo(executor_id="executor_3", host="gpu-node-7", device="cuda:1")
    reply = RegisterReply(accepted=False, reason="job is full")

    assert serde.info_from_proto(serde.info_to_proto(info)) == info
    assert serde.register_reply_from_proto(serde.register_reply_to_proto(reply)) == reply


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 5000])
def test_chunks_split_at_the_chunk_size_and_join_back(size: int) -> None:
    data = bytes(index % 251 for index in range(size))

    pieces = list(serde.split_chunks(data, 1024))
    joined = serde.join_chunks(serde.chunk_messages(data, 1024, executor_id="executor_1"))

    assert all(len(piece) <= 1024 for piece in pieces)
    assert len(pieces) == max(1, -(-size // 1024))
    assert b"".join(pieces) == data
    assert joined.data == data
    assert joined.executor_id == "executor_1"


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        list(serde.split_chunks(b"abc", 0))


def test_a_truncated_chunk_stream_is_malformed() -> None:
    chunks = list(serde.chunk_messages(bytes(3000), 1024))

    with pytest.raises(serde.MalformedMessageError, match="truncated: 2048 of the 3000"):
        serde.join_chunks(chunks[:-1])


def test_chunks_carrying_more_than_announced_are_malformed() -> None:
    chunks = [*serde.chunk_messages(bytes(100), 64), pb.Chunk(data=b"extra")]

    with pytest.raises(serde.MalformedMessageError, match="more than the 100 bytes announced"):
        serde.join_chunks(chunks)


def test_an_empty_chunk_stream_is_malformed() -> None:
    with pytest.raises(serde.MalformedMessageError, match="empty stream"):
        serde.join_chunks([])


def test_an_oversized_payload_is_refused_from_its_first_chunk_before_the_rest_is_read() -> None:
    def stream() -> Iterator[pb.Chunk]:
        yield pb.Chunk(data=b"x" * 10, total_bytes=10_000)
        raise AssertionError("the stream was read past its first chunk")

    with pytest.raises(serde.MessageTooLargeError, match="10000 bytes was announced; the limit is 1000"):
        serde.join_chunks(stream(), max_bytes=1000)


def test_an_event_over_the_limit_is_refused_when_encoded_and_when_decoded() -> None:
    event = UpdateModel(version=1, weights={"w": torch.zeros(1000)})
    payload = serde.event_to_bytes(event)

    with pytest.raises(serde.MessageTooLargeError, match="exceeds the limit of 1000 bytes"):
        serde.event_to_bytes(event, max_bytes=1000)
    with pytest.raises(serde.MessageTooLargeError, match="exceeds the limit of 1000 bytes"):
        serde.event_from_bytes(payload, max_bytes=1000)


def _framed(message: pb.Event | pb.Completion, *blobs: bytes) -> bytes:
    return b"".join(frame_parts(message.SerializeToString(), [[blob] for blob in blobs]))


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"FSH1" + bytes(8) + bytes(4) + b"trailing"],
                         ids=["corrupt-wire", "short-field", "trailing-bytes"])
def test_bytes_that_are_not_a_payload_are_malformed(garbage: bytes) -> None:
    with pytest.raises(serde.MalformedMessageError, match="Event cannot be parsed"):
        serde.event_from_bytes(garbage)
    with pytest.raises(serde.MalformedMessageError, match="Completion cannot be parsed"):
        serde.completion_from_bytes(garbage)


def test_a_header_that_is_not_protobuf_is_malformed() -> None:
    payload = b"".join(frame_parts(b"\xff\xff\xff\xff", []))

    with pytest.raises(serde.MalformedMessageError, match="Event cannot be parsed"):
        serde.event_from_bytes(payload)


def test_a_message_of_no_kind_is_malformed() -> None:
    with pytest.raises(serde.MalformedMessageError, match="Event carries no event"):
        serde.event_from_bytes(_framed(pb.Event()))
    with pytest.raises(serde.MalformedMessageError, match="Completion carries no completion"):
        serde.completion_from_bytes(_framed(pb.Completion()))


def test_truncated_safetensors_bytes_are_malformed() -> None:
    blob = b"".join(tensor_codec.encode({"w": torch.ones(64)}))
    message = pb.Event(update_model=pb.UpdateModel(version=1, weights=pb.Tensors(names=["w"], blob_index=0)))

    with pytest.raises(serde.MalformedMessageError, match=r"UpdateModel\.weights: not valid safetensors bytes"):
        serde.event_from_bytes(_framed(message, blob[:-10]))


def test_garbage_safetensors_in_a_client_update_are_malformed() -> None:
    message = pb.Completion(client_update=pb.ClientUpdate(result=pb.TrainResult(
        client_id=1, weights=pb.Tensors(names=["w"], blob_index=0))))

    with pytest.raises(serde.MalformedMessageError, match=r"ClientUpdate\.result\.weights: not valid safetensors"):
        serde.completion_from_bytes(_framed(message, b"not safetensors at all"))


def test_a_reference_to_a_missing_blob_is_malformed() -> None:
    message = pb.Event(update_model=pb.UpdateModel(version=1, weights=pb.Tensors(names=["w"], blob_index=2)))

    with pytest.raises(serde.MalformedMessageError, match="refers to blob 2 but the payload carries 1"):
        serde.event_from_bytes(_framed(message, b"\x00" * 8))


def test_tensor_names_that_do_not_match_the_tensors_are_malformed() -> None:
    blob = b"".join(tensor_codec.encode({"w": torch.ones(2)}))
    message = pb.Event(update_model=pb.UpdateModel(version=1, weights=pb.Tensors(names=["w", "w"], blob_index=0)))

    with pytest.raises(serde.MalformedMessageError, match="do not match the tensors present"):
        serde.event_from_bytes(_framed(message, blob))


def test_an_update_model_without_weights_is_malformed() -> None:
    with pytest.raises(serde.MalformedMessageError, match="UpdateModel carries no weights"):
        serde.event_from_bytes(_framed(pb.Event(update_model=pb.UpdateModel(version=3))))


def test_a_malformed_message_error_is_a_value_error() -> None:
    assert issubclass(serde.MalformedMessageError, ValueError)
    assert issubclass(serde.MessageTooLargeError, serde.MalformedMessageError)


def test_objects_that_are_not_protocol_messages_are_refused_when_encoded() -> None:
    with pytest.raises(TypeError, match="not a protocol event: str"):
        serde.event_to_bytes("shutdown")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a protocol completion: int"):
        serde.completion_to_bytes(3)  # type: ignore[arg-type]
