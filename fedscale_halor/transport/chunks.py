"""The chunking of a payload into gRPC messages, and its reassembly on the receiving side.

A stream's first chunk announces the payload's size, so that a receiver refuses an oversized payload before it
buffers anything. A size within the limit is still only a claim: the memory it names is reserved as an anonymous
mapping, whose pages the kernel commits only as the bytes arrive, so a sender that announces 2 GB and sends ten
bytes costs ten bytes.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from fedscale_halor.transport.framing import Buffer, parts_size
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.receive_buffers import ReceiveBuffers
from fedscale_halor.transport.shared_memory import SharedFolder, SharedMemoryError
from fedscale_halor.transport.wire_errors import DEFAULT_MAX_MESSAGE_BYTES, MalformedMessageError, MessageTooLargeError

POOLED_MIN_BYTES = 2**20  # smaller payloads are assembled in a plain bytearray


def split_chunks(data: Buffer | Sequence[Buffer], chunk_bytes: int) -> Iterator[bytes]:
    """Consecutive slices of at most ``chunk_bytes`` of ``data`` (or of the concatenation of its parts, which is
    never built); empty data gives one empty chunk, so a stream is never empty."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    parts = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
    pending: list[memoryview] = []
    pending_bytes = 0
    for part in parts:
        view = memoryview(part).cast("B")
        while len(view):
            take = min(chunk_bytes - pending_bytes, len(view))
            pending.append(view[:take])
            pending_bytes += take
            view = view[take:]
            if pending_bytes == chunk_bytes:
                yield b"".join(pending)
                pending, pending_bytes = [], 0
    if pending or not parts_size(parts):
        yield b"".join(pending)


def chunk_messages(data: Buffer | Sequence[Buffer], chunk_bytes: int, executor_id: str = "") -> Iterator[pb.Chunk]:
    """The wire form of a payload: the first chunk announces the total size (and, for Submit, the executor)."""
    total = parts_size([data] if isinstance(data, bytes | bytearray | memoryview) else data)
    for index, piece in enumerate(split_chunks(data, chunk_bytes)):
        if index == 0:
            yield pb.Chunk(data=piece, total_bytes=total, executor_id=executor_id)
        else:
            yield pb.Chunk(data=piece)


@dataclass(frozen=True)
class JoinedPayload:
    data: Buffer
    executor_id: str


def shared_file_chunk(name: str, size: int, executor_id: str = "") -> pb.Chunk:
    """The whole stream of a payload passed as a file in the shared folder."""
    return pb.Chunk(total_bytes=size, executor_id=executor_id, shared_file=name)


def join_chunks(chunks: Iterable[pb.Chunk], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                shared: SharedFolder | None = None, buffers: ReceiveBuffers | None = None) -> JoinedPayload:
    """Reassemble ``chunk_messages`` (or take the shared file a first chunk names); refuses an oversized payload
    from its first chunk, before buffering it, and a stream that carries more than ``max_bytes`` at the chunk that
    crosses it, before reading on. Payloads of a megabyte or more are assembled in ``buffers``' reusable
    memory when given."""
    buffer: bytearray | memoryview | None = None
    executor_id = ""
    received = 0
    stream = iter(chunks)
    for chunk in stream:
        if buffer is None:
            if chunk.total_bytes > max_bytes:
                if chunk.shared_file and shared is not None:
                    shared.discard(chunk.shared_file)
                raise MessageTooLargeError(f"a payload of {chunk.total_bytes} bytes was announced; the limit is "
                                           f"{max_bytes} bytes")
            if chunk.shared_file:
                return JoinedPayload(_take_shared(chunk, stream, shared), chunk.executor_id)
            buffer = _assembly_buffer(chunk.total_bytes, buffers)
            executor_id = chunk.executor_id
        piece = chunk.data  # each read of a bytes field makes a copy
        end = received + len(piece)
        if end > len(buffer):
            if end > max_bytes:  # refused for its size, as an announced one is, and the rest left unread
                raise MessageTooLargeError(f"chunks carry more than the limit of {max_bytes} bytes")
            raise MalformedMessageError(f"chunks carry more than the {len(buffer)} bytes announced by the first chunk")
        buffer[received:end] = piece
        received = end
    if buffer is None:
        raise MalformedMessageError("the payload arrived as an empty stream (no chunks)")
    if received != len(buffer):
        raise MalformedMessageError(f"the payload is truncated: {received} of the {len(buffer)} announced bytes "
                                    "arrived")
    return JoinedPayload(data=buffer, executor_id=executor_id)


def _assembly_buffer(size: int, buffers: ReceiveBuffers | None) -> bytearray | memoryview:
    if size < POOLED_MIN_BYTES:
        return bytearray(size)
    try:
        if buffers is None:
            # not bytearray(size), which zero-fills (commits) every announced byte before the first one arrives
            return memoryview(mmap.mmap(-1, size))
        return memoryview(buffers.acquire(size))
    except (OSError, MemoryError, OverflowError) as error:
        raise MessageTooLargeError(f"a payload of {size} bytes was announced; this side cannot reserve that much "
                                   f"memory ({error})") from None


def _take_shared(first: pb.Chunk, rest: Iterable[pb.Chunk], shared: SharedFolder | None) -> Buffer:
    if shared is None:
        raise MalformedMessageError(f"the payload names shared-memory file {first.shared_file!r}, but this side "
                                    "shares no folder with the sender")
    try:
        data = shared.take(first.shared_file, first.total_bytes)
    except SharedMemoryError as error:
        raise MalformedMessageError(str(error)) from error
    if next(iter(rest), None) is not None:  # ``rest`` is the stream past the first chunk
        raise MalformedMessageError("chunks follow a payload passed as a shared-memory file")
    return data
