"""Tensors as safetensors bytes, written and read without copying the tensor data.

The safetensors package builds one new bytes object on save and copies every tensor again on load; for models of
tens of megabytes sent twenty times a round, those copies cost more than the network. Here the payload is produced
as parts (the safetensors header, then a view of each tensor's memory) and read back as tensors that are views of
the received buffer. The bytes are standard safetensors: ``safetensors.torch.load(b"".join(parts))`` reads them.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from collections.abc import Mapping

import torch

_ALIGNMENT = 8
_DTYPE_CODES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.complex64: "C64",
}
_DTYPES_BY_CODE = {code: dtype for dtype, code in _DTYPE_CODES.items()}
_HEADER_LENGTH = struct.Struct("<Q")
_MAX_ELEMENTS = 2**63  # sizes and strides are int64 in torch


class TensorCodecError(ValueError):
    """Bytes that are not a well-formed safetensors payload, or a tensor that cannot be written as one."""


def _bytes_of(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def encode(tensors: Mapping[str, torch.Tensor]) -> tuple[bytes | memoryview, ...]:
    """The safetensors bytes of ``tensors`` as parts to be sent in order; the data parts are views, not copies."""
    header: dict[str, object] = {}
    data_parts: list[memoryview] = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        code = _DTYPE_CODES.get(tensor.dtype)
        if code is None:
            raise TensorCodecError(f"tensor {name!r}: dtype {tensor.dtype} has no safetensors code")
        data = _bytes_of(tensor)
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        data_parts.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + _HEADER_LENGTH.size) % _ALIGNMENT)  # data starts aligned, as safetensors pads
    return (_HEADER_LENGTH.pack(len(text)) + text, *data_parts)


def decode(buffer: bytes | bytearray | memoryview) -> dict[str, torch.Tensor]:
    """Tensors that are views of ``buffer`` (writable when the buffer is); every offset and size is checked."""
    view = memoryview(buffer)
    if len(view) < _HEADER_LENGTH.size:
        raise TensorCodecError(f"{len(view)} bytes are too few for a safetensors header")
    (header_length,) = _HEADER_LENGTH.unpack_from(view, 0)
    data_start = _HEADER_LENGTH.size + header_length
    if data_start > len(view):
        raise TensorCodecError(f"the safetensors header announces {header_length} bytes but only "
                               f"{len(view) - _HEADER_LENGTH.size} follow")
    try:
        header = json.loads(bytes(view[_HEADER_LENGTH.size:data_start]))
    except (ValueError, RecursionError) as error:  # ValueError: bad UTF-8 or JSON, or an integer of 4300+ digits
        raise TensorCodecError(f"the safetensors header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise TensorCodecError("the safetensors header is not a JSON object")
    data = view[data_start:]
    tensors = {name: _tensor_at(name, entry, data) for name, entry in header.items() if name != "__metadata__"}
    _refuse_overlaps(header)
    return tensors


def _is_int64(value: object) -> bool:
    # JSON numbers become floats, bools or integers of any size too; only plain integers that torch can hold pass
    return type(value) is int and -_MAX_ELEMENTS <= value < _MAX_ELEMENTS


def _tensor_at(name: str, entry: object, data: memoryview) -> torch.Tensor:
    if not isinstance(entry, dict):
        raise TensorCodecError(f"tensor {name!r}: malformed header entry {_short(entry)}")
    code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    dtype = _DTYPES_BY_CODE.get(code) if isinstance(code, str) else None
    if (dtype is None or not isinstance(shape, list) or not all(_is_int64(size) for size in shape)
            or not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int64(bound) for bound in offsets)):
        raise TensorCodecError(f"tensor {name!r}: malformed header entry {_short(entry)}")
    begin, end = offsets
    count = math.prod(shape)
    item_size = torch.empty((), dtype=dtype).element_size()
    # torch computes strides as products of the sizes: even a tensor with no elements must keep them in int64
    if math.prod(max(size, 1) for size in shape) * item_size >= _MAX_ELEMENTS:
        raise TensorCodecError(f"tensor {name!r}: shape {_short(shape)} is too large for any tensor")
    if (any(size < 0 for size in shape) or not 0 <= begin <= end <= len(data)
            or end - begin != count * item_size):
        raise TensorCodecError(f"tensor {name!r}: shape {_short(shape)} of {dtype} does not fit bytes [{begin}, {end}) "
                               f"of a {len(data)}-byte data section")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(data[begin:end], dtype=torch.uint8).view(dtype).reshape(shape)


def _refuse_overlaps(header: dict[str, dict[str, list[int]]]) -> None:
    """Safetensors forbids tensors that share bytes; here they would alias, and writing one would change another."""
    spans = sorted((entry["data_offsets"][0], entry["data_offsets"][1], name) for name, entry in header.items()
                   if name != "__metadata__" and entry["data_offsets"][0] < entry["data_offsets"][1])
    for (_, end, name), (begin, _, other) in itertools.pairwise(spans):
        if begin < end:
            raise TensorCodecError(f"tensors {name!r} and {other!r} share bytes of the data section")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
