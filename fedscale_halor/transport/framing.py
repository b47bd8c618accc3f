"""The byte layout of one protocol payload: a small protobuf header, then the tensor blobs it refers to.

Tensor bytes stay out of the protobuf message on purpose: protobuf copies a bytes field each time a message is nested
or sized, which for a model of tens of megabytes costs more than training a client. The header refers to blobs by
index, and the blobs travel after it untouched, each starting at a multiple of 8 bytes so that the receiver can view
tensors in place.

Layout: magic ``FSH1`` | u32 header length | u32 blob count | u64 length of each blob | header | zero padding to a
multiple of 8 | blob 0 | padding | blob 1 ... (integers little-endian). A blob may be handed over as several buffers;
the payload is produced as consecutive parts and never concatenated by the sender.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = b"FSH1"
_COUNTS = struct.Struct("<4sII")
_LENGTH = struct.Struct("<Q")
_ALIGNMENT = 8

Buffer = bytes | bytearray | memoryview


class FramingError(ValueError):
    """The bytes are not a payload in this layout (truncated, trailing bytes, or a wrong magic)."""


@dataclass(frozen=True)
class Frame:
    header: bytes
    blobs: tuple[memoryview, ...]  # views of the received buffer, not copies


def _padding(offset: int) -> int:
    return -offset % _ALIGNMENT


def frame_parts(header: bytes, blobs: Sequence[Sequence[Buffer]]) -> tuple[Buffer, ...]:
    """The payload as consecutive buffers: prefix and header, then each blob's buffers, padded for alignment."""
    lengths = [sum(len(memoryview(part).cast("B")) for part in blob) for blob in blobs]
    prefix = _COUNTS.pack(MAGIC, len(header), len(blobs)) + b"".join(_LENGTH.pack(length) for length in lengths)
    first = prefix + header
    parts: list[Buffer] = [first + bytes(_padding(len(first)))]
    offset = len(parts[0])
    for blob, length in zip(blobs, lengths, strict=True):
        parts.extend(blob)
        offset += length
        if _padding(offset):
            parts.append(bytes(_padding(offset)))
            offset += _padding(offset)
    return tuple(parts)


def parts_size(parts: Sequence[Buffer]) -> int:
    return sum(memoryview(part).nbytes for part in parts)


def read_frame(data: Buffer) -> Frame:
    view = memoryview(data).cast("B")
    if len(view) < _COUNTS.size:
        raise FramingError(f"a payload of {len(view)} bytes is shorter than its {_COUNTS.size}-byte prefix")
    magic, header_length, blob_count = _COUNTS.unpack_from(view, 0)
    if magic != MAGIC:
        raise FramingError(f"the payload does not start with {MAGIC!r} (found {bytes(magic)!r})")
    offset = _COUNTS.size
    if len(view) < offset + blob_count * _LENGTH.size:
        raise FramingError(f"the payload announces {blob_count} blobs but ends inside their lengths")
    lengths = [_LENGTH.unpack_from(view, offset + index * _LENGTH.size)[0] for index in range(blob_count)]
    offset += blob_count * _LENGTH.size
    header_end = offset + header_length
    expected = header_end + _padding(header_end)
    for length in lengths:
        expected += length + _padding(expected + length)
    if expected != len(view):
        raise FramingError(f"the payload has {len(view)} bytes but its prefix announces {expected}")
    header = bytes(view[offset:header_end])
    offset = header_end + _padding(header_end)
    blobs = []
    for length in lengths:
        blobs.append(view[offset:offset + length])
        offset += length + _padding(offset + length)
    return Frame(header, tuple(blobs))
