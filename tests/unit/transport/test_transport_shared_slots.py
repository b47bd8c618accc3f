"""Reusable payload slots: a sender's one mapped file in the shared folder, copied out by the receiver before the
call that names it returns. Folders are made under ``tmp_path``, never under /dev/shm."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import ClientUpdate, ExecutorInfo
from fedscale_halor.transport.shared_memory import NONCE_FILE, SLOT_SUFFIX, SharedFolder, SharedMemoryError
from fedscale_halor.types import TrainResult


def _pair(parent: Path) -> tuple[SharedFolder, SharedFolder]:
    """(the receiver's folder, the same folder attached by a sender)."""
    receiver = SharedFolder.create(str(parent))
    assert receiver is not None
    sender = SharedFolder.attach(str(receiver.path), receiver.nonce)
    assert sender is not None
    return receiver, sender


def _entries(folder: SharedFolder) -> list[str]:
    return sorted(entry.name for entry in folder.path.iterdir() if entry.name != NONCE_FILE)


def test_payloads_reuse_one_slot_and_each_copy_taken_keeps_its_own_bytes(tmp_path: Path) -> None:
    # Prepare
    receiver, sender = _pair(tmp_path)
    names, taken = [], []

    # Execute: three payloads of 12 bytes, each taken before the next is written
    for value in (1, 2, 3):
        with sender.sending([bytes([value] * 4), bytes([value] * 8)], "executor_0") as (name, size):
            names.append(name)
            taken.append(receiver.take(name, size))

    # Assert: one slot file, never removed; the receiver's copies are not overwritten by the later payloads
    assert len(set(names)) == 1 and names[0].endswith(SLOT_SUFFIX) and names[0].startswith("executor_0-")
    assert _entries(receiver) == names[:1]
    assert [bytes(copy) for copy in taken] == [bytes([1] * 12), bytes([2] * 12), bytes([3] * 12)]
    sender.detach()
    assert _entries(receiver) == []


def test_a_payload_too_large_for_the_slot_gets_a_new_one_and_the_old_one_is_removed(tmp_path: Path) -> None:
    receiver, sender = _pair(tmp_path)
    with sender.sending([b"x" * 10], "e") as (small, _):
        pass
    with sender.sending([b"y" * 11], "e") as (large, size):
        assert receiver.take(large, size) == memoryview(b"y" * 11)
    with sender.sending([b"z" * 3], "e") as (smaller, size):  # fits in the larger slot
        assert bytes(receiver.take(smaller, size)) == b"zzz"

    assert small != large and smaller == large
    assert _entries(receiver) == [large]


def test_a_call_that_fails_gives_its_slot_up(tmp_path: Path) -> None:
    # Prepare
    receiver, sender = _pair(tmp_path)

    # Execute: the call naming the slot raises, so the receiver may still be reading it
    with pytest.raises(ConnectionError), sender.sending([b"abc"], "e") as (failed, _):
        raise ConnectionError("the call did not return")
    with sender.sending([b"def"], "e") as (next_name, size):
        copy = receiver.take(next_name, size)

    # Assert
    assert failed != next_name
    assert _entries(receiver) == [next_name]
    assert bytes(copy) == b"def"


def test_a_second_payload_while_the_slot_is_held_goes_into_a_one_off_file(tmp_path: Path) -> None:
    receiver, sender = _pair(tmp_path)
    with sender.sending([b"first"], "e") as (slot_name, _):
        with sender.sending([b"second"], "e") as (other, size):
            assert other.endswith(".bin")
            assert bytes(receiver.take(other, size)) == b"second"
        assert bytes(receiver.take(slot_name, 5)) == b"first"
    assert _entries(receiver) == [slot_name]


def test_a_slot_shorter_than_announced_is_refused_and_a_refused_slot_stays(tmp_path: Path) -> None:
    receiver, sender = _pair(tmp_path)
    with sender.sending([b"four"], "e") as (name, _):
        with pytest.raises(SharedMemoryError, match="has 4 bytes, 5 were announced"):
            receiver.take(name, 5)
        receiver.discard(name)
    assert _entries(receiver) == [name]


@pytest.mark.parametrize("name", ["../escape.slot", "a/b.slot", ".slot", "nonce"])
def test_take_refuses_slot_names_this_transport_never_writes(tmp_path: Path, name: str) -> None:
    receiver, _ = _pair(tmp_path)
    with pytest.raises(SharedMemoryError, match="not one this transport writes"):
        receiver.take(name, 1)


def test_executor_updates_over_grpc_share_one_slot_and_arrive_intact(tmp_path: Path) -> None:
    # Prepare: updates of 800 kB, over the size below which payloads are streamed
    service = ScriptedService()
    sent = [torch.randn(200_000) for _ in range(3)]

    # Execute
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path)) as server:
        [folder] = [entry for entry in tmp_path.iterdir()]
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES)
        executor.register(ExecutorInfo("executor_0", "host", "cpu"))
        seen = []
        for client_id, weights in enumerate(sent):
            executor.submit("executor_0", ClientUpdate(TrainResult(
                client_id=client_id, round=1, model_version=1, weights={"w": weights}, num_samples=10,
                num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)))
            seen.append(sorted(entry.name for entry in folder.iterdir()))
        executor.close()
        after_close = sorted(entry.name for entry in folder.iterdir())

    # Assert: every update arrived as sent, although all three passed through the same file
    received = [completion.result.weights["w"] for _, completion in service.submitted]
    assert all(torch.equal(got, want) for got, want in zip(received, sent, strict=True))
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 2 and seen[0][0].endswith(SLOT_SUFFIX)
    assert after_close == [NONCE_FILE]


def test_registering_again_gives_the_old_slot_up(tmp_path: Path) -> None:
    # Prepare
    service = ScriptedService()
    update = ClientUpdate(TrainResult(client_id=1, round=1, model_version=1, weights={"w": torch.randn(200_000)},
                                      num_samples=10, num_steps=1, loss_mean=0.0, loss_square_mean=0.0,
                                      wall_time_s=0.0))

    # Execute: a slot is made, then the executor registers again (as after an aggregator restart) and sends again
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              shared_memory_parent=str(tmp_path)) as server:
        [folder] = [entry for entry in tmp_path.iterdir()]
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES)
        executor.register(ExecutorInfo("executor_0", "host", "cpu"))
        executor.submit("executor_0", update)
        first = sorted(entry.name for entry in folder.iterdir() if entry.name != NONCE_FILE)
        executor.register(ExecutorInfo("executor_0", "host", "cpu"))
        between = sorted(entry.name for entry in folder.iterdir() if entry.name != NONCE_FILE)
        executor.submit("executor_0", update)
        second = sorted(entry.name for entry in folder.iterdir() if entry.name != NONCE_FILE)
        executor.close()

    # Assert
    assert len(first) == 1 and between == [] and len(second) == 1 and second != first
    assert len(service.submitted) == 2
