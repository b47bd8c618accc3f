from __future__ import annotations

import json
import struct

import pytest
import safetensors.torch
import torch

from fedscale_halor.transport import tensor_codec
from fedscale_halor.transport.framing import FramingError, frame_parts, read_frame

MIXED = {
    "conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4),
    "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
    "mask": torch.tensor([True, False, True]),
    "empty": torch.zeros(0, 3),
    "transposed": torch.arange(6.0).reshape(2, 3).t(),
}


def _joined(tensors: dict[str, torch.Tensor]) -> bytes:
    return b"".join(tensor_codec.encode(tensors))


def test_encoded_bytes_are_standard_safetensors() -> None:
    loaded = safetensors.torch.load(_joined(MIXED))

    assert set(loaded) == set(MIXED)
    for name, tensor in MIXED.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


def test_safetensors_bytes_decode_to_equal_tensors() -> None:
    decoded = tensor_codec.decode(bytearray(safetensors.torch.save({k: v.contiguous() for k, v in MIXED.items()})))

    for name, tensor in MIXED.items():
        assert decoded[name].dtype == tensor.dtype and torch.equal(decoded[name], tensor), name


def test_decoded_tensors_are_views_of_the_buffer_not_copies() -> None:
    buffer = bytearray(_joined({"w": torch.zeros(4)}))

    decoded = tensor_codec.decode(buffer)
    struct.pack_into("<f", buffer, len(buffer) - 4, 2.5)

    assert decoded["w"].tolist() == [0.0, 0.0, 0.0, 2.5]


def test_encoding_does_not_copy_tensor_data() -> None:
    tensor = torch.zeros(3)

    parts = tensor_codec.encode({"w": tensor})
    tensor[1] = 4.0

    assert struct.unpack("<3f", bytes(parts[1])) == (0.0, 4.0, 0.0)


def _with_header(header: object, data: bytes) -> bytearray:
    text = json.dumps(header).encode()
    return bytearray(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize(("buffer", "message"), [
    (bytearray(b"\x01\x02"), "too few"),
    (bytearray(struct.pack("<Q", 100) + b"{}"), "announces 100 bytes"),
    (bytearray(struct.pack("<Q", 3) + b"{{{"), "not JSON"),
    (_with_header([1, 2], b""), "not a JSON object"),
    (_with_header({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "malformed header"),
    (_with_header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "does not fit"),
    (_with_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(4)), "does not fit"),
    (_with_header({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b""), "does not fit"),
], ids=["short", "header-past-end", "bad-json", "json-list", "unknown-dtype", "size-mismatch", "out-of-range",
        "negative-shape"])
def test_malformed_safetensors_bytes_are_refused_with_the_reason(buffer: bytearray, message: str) -> None:
    with pytest.raises(tensor_codec.TensorCodecError, match=message):
        tensor_codec.decode(buffer)


def test_blobs_of_a_frame_start_aligned_and_come_back_intact() -> None:
    blobs = [[b"abc"], [b"0123456789", memoryview(b"xy")], []]

    payload = bytearray(b"".join(frame_parts(b"header!", blobs)))
    frame = read_frame(payload)

    assert frame.header == b"header!"
    assert [bytes(blob) for blob in frame.blobs] == [b"abc", b"0123456789xy", b""]
    starts = [len(payload) - len(payload[payload.index(bytes(blob)):]) for blob in frame.blobs[:2]]
    assert all(start % 8 == 0 for start in starts)


def test_a_truncated_frame_is_refused() -> None:
    payload = b"".join(frame_parts(b"h", [[b"0123456789"]]))

    with pytest.raises(FramingError, match="prefix announces"):
        read_frame(payload[:-9])
