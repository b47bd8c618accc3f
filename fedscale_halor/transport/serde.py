"""Conversion between the protocol's dataclasses and their protobuf wire form (chunking is in chunks.py).

The only module that knows both the dataclasses of ``messages`` and the protobuf stubs. Tensors travel as
safetensors bytes: nothing from the network is ever unpickled. Anything that cannot be decoded raises
``MalformedMessageError`` naming what was wrong, never an error from deep inside protobuf or safetensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from google.protobuf.message import DecodeError

from fedscale_halor.aggregation.partial import SumRule
from fedscale_halor.transport import tensor_codec

# the chunking names are re-exported: the transports reach chunking through this module
from fedscale_halor.transport.chunks import POOLED_MIN_BYTES as POOLED_MIN_BYTES
from fedscale_halor.transport.chunks import JoinedPayload as JoinedPayload
from fedscale_halor.transport.chunks import chunk_messages as chunk_messages
from fedscale_halor.transport.chunks import join_chunks as join_chunks
from fedscale_halor.transport.chunks import shared_file_chunk as shared_file_chunk
from fedscale_halor.transport.chunks import split_chunks as split_chunks
from fedscale_halor.transport.framing import Buffer, Frame, FramingError, frame_parts, parts_size, read_frame
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    Envelope,
    EvalFailure,
    EvalOutcome,
    Event,
    ExecutorInfo,
    Heartbeat,
    Idle,
    ModelTest,
    PartialUpdate,
    RegisterReply,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.wire_errors import DEFAULT_MAX_MESSAGE_BYTES, MalformedMessageError, MessageTooLargeError
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights


# tensors ----------------------------------------------------------------------------------------------------------
def weights_to_proto(weights: Weights, blobs: list[tuple[Buffer, ...]]) -> pb.Tensors:
    """The tensors' names; their safetensors bytes are appended to ``blobs`` (they travel outside protobuf)."""
    try:
        blobs.append(tensor_codec.encode(weights))
    except tensor_codec.TensorCodecError as error:
        raise TypeError(f"weights cannot be sent: {error}") from error
    return pb.Tensors(names=list(weights), blob_index=len(blobs) - 1)


def weights_from_proto(message: pb.Tensors, blobs: Sequence[memoryview], where: str) -> dict[str, torch.Tensor]:
    if message.blob_index >= len(blobs):
        raise MalformedMessageError(f"{where}: refers to blob {message.blob_index} but the payload carries "
                                    f"{len(blobs)}")
    try:
        tensors = tensor_codec.decode(blobs[message.blob_index])
    except tensor_codec.TensorCodecError as error:
        raise MalformedMessageError(f"{where}: not valid safetensors bytes: {error}") from error
    names = list(message.names)
    if len(set(names)) != len(names) or set(names) != set(tensors):
        raise MalformedMessageError(f"{where}: the listed tensor names {sorted(names)} do not match the tensors "
                                    f"present {sorted(tensors)}")
    return {name: tensors[name] for name in names}


# small messages ---------------------------------------------------------------------------------------------------
def info_to_proto(info: ExecutorInfo) -> pb.ExecutorInfo:
    return pb.ExecutorInfo(executor_id=info.executor_id, host=info.host, device=info.device)


def info_from_proto(message: pb.ExecutorInfo) -> ExecutorInfo:
    return ExecutorInfo(executor_id=message.executor_id, host=message.host, device=message.device)


def register_reply_to_proto(reply: RegisterReply) -> pb.RegisterReply:
    return pb.RegisterReply(accepted=reply.accepted, reason=reply.reason)


def register_reply_from_proto(message: pb.RegisterReply) -> RegisterReply:
    return RegisterReply(accepted=message.accepted, reason=message.reason)


def _client_state_to_proto(state: Weights, blobs: list[tuple[Buffer, ...]]) -> pb.Tensors | None:
    """Per-client state (FedDC's drift) as one blob of its own; None (the field stays unset) when empty."""
    return weights_to_proto(state, blobs) if state else None


def _client_state_from_proto(message: Any, blobs: Sequence[memoryview], where: str) -> dict[str, torch.Tensor]:
    if not message.HasField("client_state"):
        return {}
    return weights_from_proto(message.client_state, blobs, f"{where}.client_state")


def _task_to_proto(task: TrainTask, blobs: list[tuple[Buffer, ...]]) -> pb.TrainTask:
    return pb.TrainTask(round=task.round, client_id=task.client_id, model_version=task.model_version,
                        learning_rate=task.learning_rate, local_steps=task.local_steps, batch_size=task.batch_size,
                        seed=task.seed, client_state=_client_state_to_proto(task.client_state, blobs),
                        summed=task.summed)


def _task_from_proto(message: pb.TrainTask, blobs: Sequence[memoryview]) -> TrainTask:
    return TrainTask(round=message.round, client_id=message.client_id, model_version=message.model_version,
                     learning_rate=message.learning_rate, local_steps=message.local_steps,
                     batch_size=message.batch_size, seed=message.seed,
                     client_state=_client_state_from_proto(message, blobs, f"TrainTask of client {message.client_id}"),
                     summed=message.summed)


def _eval_result_to_proto(result: EvalResult) -> pb.EvalResult:
    return pb.EvalResult(num_samples=result.num_samples, loss_sum=result.loss_sum,
                         top1_correct=result.top1_correct, top5_correct=result.top5_correct)


def _eval_result_from_proto(message: pb.EvalResult) -> EvalResult:
    return EvalResult(num_samples=message.num_samples, loss_sum=message.loss_sum,
                      top1_correct=message.top1_correct, top5_correct=message.top5_correct)


def _envelope_to_proto(envelope: Envelope) -> pb.Envelope:
    return pb.Envelope(kind=envelope.kind, body=envelope.body)


def _envelope_from_proto(message: pb.Envelope, _: Sequence[memoryview] = ()) -> Envelope:
    if not message.kind:
        raise MalformedMessageError("Envelope carries no kind")
    return Envelope(kind=message.kind, body=message.body)


def _require(message: Any, field: str, where: str) -> None:
    if not message.HasField(field):
        raise MalformedMessageError(f"{where} carries no {field}")


# events -----------------------------------------------------------------------------------------------------------
def event_to_proto(event: Event, blobs: list[tuple[Buffer, ...]]) -> pb.Event:
    if isinstance(event, UpdateModel):
        return pb.Event(update_model=pb.UpdateModel(version=event.version, cohort=event.cohort,
                                                    weights=weights_to_proto(event.weights, blobs)))
    if isinstance(event, ClientTrain):
        tasks = [_task_to_proto(task, blobs) for task in event.tasks]
        rule = None if event.sum_rule is None else pb.SumRule(weighted=event.sum_rule.weighted)
        return pb.Event(client_train=pb.ClientTrain(round=event.round, model_version=event.model_version, tasks=tasks,
                                                    hints=[_envelope_to_proto(hint) for hint in event.hints],
                                                    cohort=event.cohort, sum_rule=rule))
    if isinstance(event, ModelTest):
        return pb.Event(model_test=pb.ModelTest(round=event.round, model_version=event.model_version,
                                                shard_index=event.shard_index, shard_count=event.shard_count,
                                                cohort=event.cohort, view=event.view))
    if isinstance(event, Idle):
        return pb.Event(idle=pb.Idle(wait_s=event.wait_s))
    if isinstance(event, Shutdown):
        return pb.Event(shutdown=pb.Shutdown(reason=event.reason))
    if isinstance(event, Envelope):
        return pb.Event(plugin=_envelope_to_proto(event))
    raise TypeError(f"not a protocol event: {type(event).__name__}")


def _update_model_from_proto(message: pb.UpdateModel, blobs: Sequence[memoryview]) -> UpdateModel:
    _require(message, "weights", "UpdateModel")
    return UpdateModel(version=message.version, cohort=message.cohort,
                       weights=weights_from_proto(message.weights, blobs, "UpdateModel.weights"))


def _client_train_from_proto(message: pb.ClientTrain, blobs: Sequence[memoryview]) -> ClientTrain:
    tasks = tuple(_task_from_proto(task, blobs) for task in message.tasks)
    rule = SumRule(weighted=message.sum_rule.weighted) if message.HasField("sum_rule") else None
    if rule is None and any(task.summed for task in tasks):
        raise MalformedMessageError(f"ClientTrain of round {message.round} sums clients' updates but carries no "
                                    "sum_rule")
    return ClientTrain(round=message.round, model_version=message.model_version, tasks=tasks,
                       hints=tuple(_envelope_from_proto(hint) for hint in message.hints), cohort=message.cohort,
                       sum_rule=rule)


_EVENT_DECODERS: dict[str, Callable[[Any, Sequence[memoryview]], Event]] = {
    "update_model": _update_model_from_proto,
    "client_train": _client_train_from_proto,
    "model_test": lambda message, _: ModelTest(round=message.round, model_version=message.model_version,
                                               shard_index=message.shard_index, shard_count=message.shard_count,
                                               cohort=message.cohort, view=message.view),
    "idle": lambda message, _: Idle(wait_s=message.wait_s),
    "shutdown": lambda message, _: Shutdown(reason=message.reason),
    "plugin": _envelope_from_proto,
}


def event_from_proto(message: pb.Event, blobs: Sequence[memoryview] = ()) -> Event:
    kind = message.WhichOneof("kind")
    if kind is None:
        raise MalformedMessageError("Event carries no event (none of its kinds is set)")
    return _EVENT_DECODERS[kind](getattr(message, kind), blobs)


def event_to_parts(event: Event, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> tuple[Buffer, ...]:
    """The event's payload as consecutive buffers (see framing.py): send them in order, never joined."""
    blobs: list[tuple[Buffer, ...]] = []
    return _framed(event_to_proto(event, blobs), blobs, max_bytes)


def event_to_bytes(event: Event, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    return b"".join(event_to_parts(event, max_bytes))


def event_from_bytes(data: Buffer, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Event:
    frame = _read_frame(pb.Event, data, max_bytes)
    return event_from_proto(_parse(pb.Event, frame.header, max_bytes), frame.blobs)


# completions ------------------------------------------------------------------------------------------------------
def _result_to_proto(result: TrainResult, blobs: list[tuple[Buffer, ...]], *, with_weights: bool) -> pb.TrainResult:
    return pb.TrainResult(
        client_id=result.client_id, round=result.round, model_version=result.model_version,
        weights=weights_to_proto(result.weights, blobs) if with_weights else None, num_samples=result.num_samples,
        num_steps=result.num_steps, loss_mean=result.loss_mean, loss_square_mean=result.loss_square_mean,
        wall_time_s=result.wall_time_s, client_state=_client_state_to_proto(result.client_state, blobs))


def completion_to_proto(completion: Completion, blobs: list[tuple[Buffer, ...]]) -> pb.Completion:
    if isinstance(completion, ClientUpdate):
        return pb.Completion(client_update=pb.ClientUpdate(
            result=_result_to_proto(completion.result, blobs, with_weights=True)))
    if isinstance(completion, PartialUpdate):
        if any(result.weights or result.client_state for result in completion.results):
            raise TypeError("a PartialUpdate's results travel without weights and client state")
        return pb.Completion(partial_update=pb.PartialUpdate(
            round=completion.round, model_version=completion.model_version,
            results=[_result_to_proto(result, blobs, with_weights=False) for result in completion.results],
            sums=weights_to_proto(completion.sums, blobs)))
    if isinstance(completion, ClientFailure):
        return pb.Completion(client_failure=pb.ClientFailure(round=completion.round, client_id=completion.client_id,
                                                             error=completion.error, fatal=completion.fatal))
    if isinstance(completion, EvalOutcome):
        return pb.Completion(eval_outcome=pb.EvalOutcome(
            round=completion.round, model_version=completion.model_version, shard_index=completion.shard_index,
            result=_eval_result_to_proto(completion.result), view=completion.view))
    if isinstance(completion, EvalFailure):
        return pb.Completion(eval_failure=pb.EvalFailure(
            round=completion.round, model_version=completion.model_version, shard_index=completion.shard_index,
            error=completion.error, fatal=completion.fatal, view=completion.view))
    if isinstance(completion, Heartbeat):
        return pb.Completion(heartbeat=pb.Heartbeat())
    if isinstance(completion, Envelope):
        return pb.Completion(plugin=_envelope_to_proto(completion))
    raise TypeError(f"not a protocol completion: {type(completion).__name__}")


def _result_from_proto(result: pb.TrainResult, blobs: Sequence[memoryview], where: str,
                       weights: dict[str, torch.Tensor]) -> TrainResult:
    return TrainResult(
        client_id=result.client_id, round=result.round, model_version=result.model_version, weights=weights,
        num_samples=result.num_samples, num_steps=result.num_steps, loss_mean=result.loss_mean,
        loss_square_mean=result.loss_square_mean, wall_time_s=result.wall_time_s,
        client_state=_client_state_from_proto(result, blobs, where))


def _client_update_from_proto(message: pb.ClientUpdate, blobs: Sequence[memoryview]) -> ClientUpdate:
    _require(message, "result", "ClientUpdate")
    result = message.result
    _require(result, "weights", "ClientUpdate.result")
    return ClientUpdate(_result_from_proto(result, blobs, "ClientUpdate.result",
                                           weights_from_proto(result.weights, blobs, "ClientUpdate.result.weights")))


def _partial_update_from_proto(message: pb.PartialUpdate, blobs: Sequence[memoryview]) -> PartialUpdate:
    _require(message, "sums", "PartialUpdate")
    results = []
    for result in message.results:
        where = f"PartialUpdate.results (client {result.client_id})"
        if result.HasField("weights") or result.HasField("client_state"):
            raise MalformedMessageError(f"{where} carries weights: a summed client's update is in the sums")
        results.append(_result_from_proto(result, blobs, where, {}))
    return PartialUpdate(round=message.round, model_version=message.model_version, results=tuple(results),
                         sums=weights_from_proto(message.sums, blobs, "PartialUpdate.sums"))


def _eval_outcome_from_proto(message: pb.EvalOutcome, _: Sequence[memoryview]) -> EvalOutcome:
    _require(message, "result", "EvalOutcome")
    return EvalOutcome(round=message.round, model_version=message.model_version, shard_index=message.shard_index,
                       result=_eval_result_from_proto(message.result), view=message.view)


_COMPLETION_DECODERS: dict[str, Callable[[Any, Sequence[memoryview]], Completion]] = {
    "client_update": _client_update_from_proto,
    "partial_update": _partial_update_from_proto,
    "client_failure": lambda message, _: ClientFailure(round=message.round, client_id=message.client_id,
                                                       error=message.error, fatal=message.fatal),
    "eval_outcome": _eval_outcome_from_proto,
    "eval_failure": lambda message, _: EvalFailure(round=message.round, model_version=message.model_version,
                                                   shard_index=message.shard_index, error=message.error,
                                                   fatal=message.fatal, view=message.view),
    "heartbeat": lambda message, _: Heartbeat(),
    "plugin": _envelope_from_proto,
}


def completion_from_proto(message: pb.Completion, blobs: Sequence[memoryview] = ()) -> Completion:
    kind = message.WhichOneof("kind")
    if kind is None:
        raise MalformedMessageError("Completion carries no completion (none of its kinds is set)")
    return _COMPLETION_DECODERS[kind](getattr(message, kind), blobs)


def completion_to_parts(completion: Completion, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> tuple[Buffer, ...]:
    blobs: list[tuple[Buffer, ...]] = []
    return _framed(completion_to_proto(completion, blobs), blobs, max_bytes)


def completion_to_bytes(completion: Completion, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    return b"".join(completion_to_parts(completion, max_bytes))


def completion_from_bytes(data: Buffer, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Completion:
    frame = _read_frame(pb.Completion, data, max_bytes)
    return completion_from_proto(_parse(pb.Completion, frame.header, max_bytes), frame.blobs)


# bytes ------------------------------------------------------------------------------------------------------------
def _framed(message: pb.Event | pb.Completion, blobs: list[tuple[Buffer, ...]], max_bytes: int) -> tuple[Buffer, ...]:
    parts = frame_parts(message.SerializeToString(), blobs)
    size = parts_size(parts)
    if size > max_bytes:
        raise MessageTooLargeError(f"{type(message).__name__} of {size} bytes exceeds the limit of {max_bytes} bytes")
    return parts


def _read_frame(message_type: Any, data: Buffer, max_bytes: int) -> Frame:
    if isinstance(data, bytes):
        data = bytearray(data)  # tensors are decoded as views of the buffer, and must be writable
    if len(data) > max_bytes:
        raise MessageTooLargeError(f"{message_type.__name__} of {len(data)} bytes exceeds the limit of {max_bytes} "
                                   "bytes")
    try:
        return read_frame(data)
    except FramingError as error:
        raise MalformedMessageError(f"{message_type.__name__} cannot be parsed ({len(data)} bytes): {error}") from error


def _parse(message_type: Any, data: bytes, max_bytes: int) -> Any:
    if len(data) > max_bytes:
        raise MessageTooLargeError(f"{message_type.__name__} of {len(data)} bytes exceeds the limit of {max_bytes} "
                                   "bytes")
    try:
        return message_type.FromString(data)
    except DecodeError as error:
        raise MalformedMessageError(f"{message_type.__name__} cannot be parsed ({len(data)} bytes): {error}") from error
