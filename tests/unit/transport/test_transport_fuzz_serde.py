"""Fuzzing of the payload decoders: whatever bytes arrive, decoding ends in a protocol message or in the transport's
one error type (MalformedMessageError), never in IndexError, struct.error, MemoryError or a crash, and a huge
announced size is refused before it is allocated."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import resource
import struct
from collections.abc import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedscale_halor.transport import framing, serde, tensor_codec
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    Envelope,
    EvalFailure,
    EvalOutcome,
    Event,
    Heartbeat,
    Idle,
    ModelTest,
    PartialUpdate,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import EvalResult, TrainResult, TrainTask

# every test here draws at most this many examples, so the file runs in a few seconds
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
           torch.uint8, torch.bool]
_INT64 = st.integers(-(2**63), 2**63 - 1)


# valid messages, to be broken ---------------------------------------------------------------------------------
@st.composite
def _weights(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    names = draw(st.lists(st.text("abcdef.", min_size=1, max_size=8), max_size=4, unique=True))
    weights = {}
    for name in names:
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        weights[name] = torch.zeros(shape).to(draw(st.sampled_from(_DTYPES)))
    return weights


def _task(client_id: int, round_index: int) -> TrainTask:
    return TrainTask(round=round_index, client_id=client_id, model_version=1, learning_rate=0.1, local_steps=2,
                     batch_size=4, seed=client_id)


_EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(UpdateModel, _INT64, _weights()),
    st.builds(lambda round_index, clients: ClientTrain(round_index, 1, tuple(_task(c, round_index) for c in clients)),
              _INT64, st.lists(_INT64, max_size=3)),
    st.builds(ModelTest, _INT64, _INT64, _INT64, _INT64),
    st.builds(Idle, st.floats(allow_nan=False)),
    st.builds(Shutdown, st.text(max_size=20)),
    st.builds(Envelope, st.text(min_size=1, max_size=20), st.binary(max_size=64)),
)
_COMPLETIONS: st.SearchStrategy[Completion] = st.one_of(
    st.builds(lambda weights, client: ClientUpdate(TrainResult(client, 1, 1, weights, 4, 2, 0.5, 0.3, 0.1)),
              _weights(), _INT64),
    st.builds(lambda weights, clients: PartialUpdate(1, 1, tuple(TrainResult(c, 1, 1, {}, 4, 2, 0.5, 0.3, 0.1)
                                                             for c in clients), weights),
              _weights(), st.lists(_INT64, max_size=3)),
    st.builds(ClientFailure, _INT64, _INT64, st.text(max_size=20), st.booleans()),
    st.builds(EvalOutcome, _INT64, _INT64, _INT64, st.just(EvalResult(3, 1.0, 2, 3))),
    st.builds(EvalFailure, _INT64, _INT64, _INT64, st.text(max_size=20), st.booleans()),
    st.just(Heartbeat()),
    st.builds(Envelope, st.text(min_size=1, max_size=20), st.binary(max_size=64)),
)


def _decodes_or_is_refused(decode: Callable[[bytes], object], data: bytes) -> None:
    """The property every fuzz test asserts: a message, or MalformedMessageError, and nothing else escapes."""
    with contextlib.suppress(serde.MalformedMessageError):
        decode(data)


# random and broken bytes --------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_decode_or_are_refused_as_malformed(data: bytes) -> None:
    _decodes_or_is_refused(serde.event_from_bytes, data)
    _decodes_or_is_refused(serde.completion_from_bytes, data)


@FUZZ
@given(st.binary(max_size=256), st.lists(st.binary(max_size=64), max_size=3))
def test_random_headers_in_a_well_formed_frame_decode_or_are_refused(header: bytes, blobs: list[bytes]) -> None:
    # Prepare: a frame whose layout is right, so the protobuf header and the blobs are what gets fuzzed
    data = b"".join(framing.frame_parts(header, [(blob,) for blob in blobs]))

    # Execute / Assert
    _decodes_or_is_refused(serde.event_from_bytes, data)
    _decodes_or_is_refused(serde.completion_from_bytes, data)


@FUZZ
@given(_EVENTS, st.data())
def test_a_truncated_event_is_refused_as_malformed(event: Event, data: st.DataObject) -> None:
    # Prepare
    whole = serde.event_to_bytes(event)
    cut = data.draw(st.integers(0, len(whole) - 1))

    # Execute / Assert: the frame announces its length, so any cut is noticed
    with pytest.raises(serde.MalformedMessageError):
        serde.event_from_bytes(whole[:cut])


@FUZZ
@given(_COMPLETIONS, st.data())
def test_a_truncated_or_extended_completion_is_refused_as_malformed(completion: Completion,
                                                                     data: st.DataObject) -> None:
    whole = serde.completion_to_bytes(completion)
    cut = data.draw(st.integers(0, len(whole) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=16))

    with pytest.raises(serde.MalformedMessageError):
        serde.completion_from_bytes(whole[:cut])
    with pytest.raises(serde.MalformedMessageError):
        serde.completion_from_bytes(whole + extra)


@FUZZ
@given(st.one_of(_EVENTS, _COMPLETIONS), st.data())
def test_flipped_bytes_in_a_valid_payload_decode_or_are_refused(message: Event | Completion,
                                                                data: st.DataObject) -> None:
    # Prepare: the same payload with a few bytes replaced anywhere (prefix, header, safetensors header, tensor data)
    is_event = not isinstance(message, ClientUpdate | PartialUpdate | ClientFailure | EvalOutcome | EvalFailure
                                       | Heartbeat)
    whole = bytearray(serde.event_to_bytes(message) if is_event else serde.completion_to_bytes(message))
    for _ in range(data.draw(st.integers(1, 4))):
        whole[data.draw(st.integers(0, len(whole) - 1))] = data.draw(st.integers(0, 255))

    # Execute / Assert
    _decodes_or_is_refused(serde.event_from_bytes if is_event else serde.completion_from_bytes, bytes(whole))


# tensors: wrong shapes, dtypes, offsets ---------------------------------------------------------------------------
_ODD_NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none(), st.text(max_size=3),
                         st.sampled_from([-1, 2**31, 2**32, 2**62, 2**63, 2**64, 2**70]))
_CODES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "C64": 8}


@st.composite
def _entry(draw: st.DrawFn) -> object:
    """A header entry that fits a 64-byte data section, then, mostly, one of its fields made odd."""
    code = draw(st.sampled_from(sorted(_CODES)))
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    size = _CODES[code] * math.prod(shape)
    begin = draw(st.integers(0, max(0, 64 - size)))
    entry: dict[str, object] = {"dtype": code, "shape": shape, "data_offsets": [begin, begin + size]}
    field = draw(st.sampled_from(["none", "dtype", "shape", "shape item", "offsets", "offset", "entry"]))
    odd = draw(_ODD_NUMBERS)
    if field == "dtype":
        entry["dtype"] = draw(st.sampled_from(["F8", "u8", "", "F32 "])) if draw(st.booleans()) else odd
    elif field in ("shape", "offsets"):
        entry["shape" if field == "shape" else "data_offsets"] = odd
    elif field == "shape item":
        entry["shape"] = [*shape, odd] if draw(st.booleans()) or not shape else [odd, *shape[1:]]
    elif field == "offset":
        entry["data_offsets"] = [odd, begin + size] if draw(st.booleans()) else [begin, odd]
    elif field == "entry":
        return draw(st.recursive(_ODD_NUMBERS, lambda inner: st.lists(inner, max_size=3)
                                 | st.dictionaries(st.text(max_size=3), inner, max_size=3)))
    return entry


def _safetensors(header: object, data: bytes) -> bytearray:
    text = json.dumps(header).encode()
    return bytearray(struct.pack("<Q", len(text)) + text + data)


@settings(FUZZ, max_examples=400)
@given(st.dictionaries(st.text(max_size=4), _entry(), max_size=3), st.binary(min_size=64, max_size=64))
def test_safetensors_headers_with_any_entries_decode_into_fitting_tensors_or_are_refused(
        header: dict[str, object], data: bytes) -> None:
    try:
        tensors = tensor_codec.decode(_safetensors(header, data))
    except tensor_codec.TensorCodecError:
        return
    spans = []
    for name, tensor in tensors.items():  # what is accepted lies inside the data and has the announced shape
        entry = header[name]
        assert isinstance(entry, dict)
        begin, end = entry["data_offsets"]
        assert list(tensor.shape) == entry["shape"]
        assert tensor.numel() * tensor.element_size() == end - begin
        assert 0 <= begin <= end <= len(data)
        spans += [(begin, end)] if begin < end else []
    spans.sort()
    assert all(end <= begin for (_, end), (begin, _) in itertools.pairwise(spans))  # no two alias


@pytest.mark.parametrize("header_text", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the JSON decoder's recursion
    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, Infinity]}}',
    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + b"9" * 5000 + b"]}}",  # past int()'s digit limit
    b'{"w": {"dtype": "F32", "shape": [0, 1180591620717411303424], "data_offsets": [0, 0]}}',
    b'{"w": {"dtype": "F32", "shape": [0, 1099511627776, 1099511627776], "data_offsets": [0, 0]}}',
    b'{"w": {"dtype": "F32", "shape": "4", "data_offsets": [0, 4]}}',
    b'{"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}',
    b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U8", "shape": [2], '
    b'"data_offsets": [2, 4]}}',  # tensors sharing bytes would alias each other
], ids=["deep-json", "infinite-offset", "huge-literal", "shape-past-int64", "strides-past-int64", "string-shape",
        "float-shape", "overlapping"])
def test_headers_found_by_fuzzing_are_refused_with_the_codec_error(header_text: bytes) -> None:
    buffer = bytearray(struct.pack("<Q", len(header_text)) + header_text + bytes(4))

    with pytest.raises(tensor_codec.TensorCodecError):
        tensor_codec.decode(buffer)


def test_a_tensor_of_the_wrong_dtype_or_shape_for_its_bytes_is_refused_inside_a_completion() -> None:
    # Prepare: a ClientUpdate whose safetensors blob declares 3 float64 values over the 12 bytes of 3 float32 ones
    payload = bytearray(serde.completion_to_bytes(
        ClientUpdate(TrainResult(1, 1, 1, {"w": torch.zeros(3)}, 4, 2, 0.5, 0.3, 0.1))))
    at = payload.index(b'"F32"')
    payload[at:at + 5] = b'"F64"'

    # Execute / Assert
    with pytest.raises(serde.MalformedMessageError, match="does not fit"):
        serde.completion_from_bytes(bytes(payload))


# huge declared sizes ----------------------------------------------------------------------------------------------
@FUZZ
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=4), st.binary(max_size=32))
def test_a_frame_announcing_huge_lengths_is_refused_without_allocating(header_length: int, blob_lengths: list[int],
                                                                       tail: bytes) -> None:
    data = (struct.pack("<4sII", framing.MAGIC, header_length, len(blob_lengths))
            + b"".join(struct.pack("<Q", length) for length in blob_lengths) + tail)

    _decodes_or_is_refused(serde.event_from_bytes, data)


@FUZZ
@given(st.integers(2**31, 2**64 - 1))
def test_a_payload_announced_over_the_limit_is_refused_from_its_first_chunk(announced: int) -> None:
    chunks = iter([pb.Chunk(data=b"x", total_bytes=announced), pb.Chunk(data=b"never read")])

    with pytest.raises(serde.MessageTooLargeError, match="was announced"):
        serde.join_chunks(chunks)

    assert next(chunks).data == b"never read"  # refused before the rest of the stream was read


def test_a_huge_announcement_within_the_limit_commits_no_memory_before_bytes_arrive() -> None:
    # Prepare: 1.5 GB announced, 10 bytes sent
    announced = 3 * 2**29
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # Execute
    with pytest.raises(serde.MalformedMessageError, match="truncated: 10 of the"):
        serde.join_chunks(iter([pb.Chunk(data=bytes(10), total_bytes=announced)]))

    # Assert: a zero-filled buffer would have raised the peak by the whole announcement
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib < 256 * 1024


@FUZZ
@given(st.lists(st.builds(pb.Chunk, data=st.binary(max_size=32), total_bytes=st.integers(0, 64),
                          executor_id=st.text(max_size=4)), max_size=4))
def test_any_stream_of_chunks_joins_or_is_refused_as_malformed(chunks: list[pb.Chunk]) -> None:
    try:
        joined = serde.join_chunks(chunks, max_bytes=48)
    except serde.MalformedMessageError:
        return
    assert len(joined.data) == chunks[0].total_bytes == sum(len(chunk.data) for chunk in chunks)
