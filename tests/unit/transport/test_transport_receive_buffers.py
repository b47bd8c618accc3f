import gc

import torch

from fedscale_halor.transport import serde
from fedscale_halor.transport.receive_buffers import ReceiveBuffers
from fedscale_halor.transport.tensor_codec import decode, encode


def test_a_buffer_comes_back_only_when_the_last_tensor_decoded_from_it_dies() -> None:
    # Prepare: a payload decoded into tensors that are views of the received buffer
    buffers = ReceiveBuffers(kept=2)
    payload = b"".join(bytes(part) for part in encode({"w": torch.arange(6, dtype=torch.float32)}))
    received = buffers.acquire(len(payload))
    received[:] = memoryview(payload)
    address = received.ctypes.data
    tensors = decode(memoryview(received))

    # Execute / Assert: the array is dropped but the tensor still reads it, so nothing is given back yet
    del received
    gc.collect()
    assert buffers.free_count == 0
    assert tensors["w"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    del tensors
    assert buffers.free_count == 1
    again = buffers.acquire(len(payload) - 8)
    assert again.ctypes.data == address and len(again) == len(payload) - 8


def test_at_most_the_kept_number_of_buffers_wait_for_reuse_and_a_larger_payload_gets_new_memory() -> None:
    buffers = ReceiveBuffers(kept=2)
    arrays = [buffers.acquire(100) for _ in range(3)]
    addresses = [array.ctypes.data for array in arrays]
    del arrays
    assert buffers.free_count == 2

    larger = buffers.acquire(1000)
    assert len(larger) == 1000 and buffers.free_count == 2  # neither kept buffer is large enough
    smaller = buffers.acquire(50)

    assert smaller.ctypes.data in addresses
    assert buffers.free_count == 1


def test_streamed_payloads_of_a_megabyte_or_more_are_assembled_in_reusable_memory() -> None:
    # Prepare: one payload over the pooling size, one under it, each cut into 64 kB chunks
    buffers = ReceiveBuffers(kept=1)
    large = bytes(range(256)) * (serde.POOLED_MIN_BYTES // 256 + 1)
    small = b"tiny payload"

    # Execute
    joined_large = serde.join_chunks(serde.chunk_messages(large, 64 * 1024), buffers=buffers)
    joined_small = serde.join_chunks(serde.chunk_messages(small, 64 * 1024), buffers=buffers)

    # Assert: both whole; only the large one took pooled memory, which comes back once it is dropped
    assert bytes(joined_large.data) == large and bytes(joined_small.data) == small
    assert isinstance(joined_large.data, memoryview) and isinstance(joined_small.data, bytearray)
    assert buffers.free_count == 0
    del joined_large
    assert buffers.free_count == 1
