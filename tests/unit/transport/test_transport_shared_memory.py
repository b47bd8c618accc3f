"""SharedFolder, the payload files that executors on the aggregator's host pass instead of streaming chunks, and
their reassembly by serde.join_chunks. Every folder is made under ``tmp_path``, never under /dev/shm."""

from __future__ import annotations

import array
import os
import re
import stat
import warnings
from pathlib import Path

import pytest
import torch

from fedscale_halor.transport import serde
from fedscale_halor.transport.messages import ClientUpdate
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.shared_memory import NONCE_FILE, SharedFolder, SharedMemoryError
from fedscale_halor.types import TrainResult


def _create(parent: Path) -> SharedFolder:
    folder = SharedFolder.create(str(parent))
    assert folder is not None
    return folder


def _payload_files(folder: SharedFolder) -> list[str]:
    return sorted(entry.name for entry in folder.path.iterdir() if entry.name != NONCE_FILE)


# create / attach --------------------------------------------------------------------------------------------------
def test_create_makes_a_private_folder_holding_its_nonce(tmp_path: Path) -> None:
    folder = _create(tmp_path)

    assert folder.path.parent == tmp_path
    assert folder.path.name.startswith("fedscale_halor_")
    assert stat.S_IMODE(os.stat(folder.path).st_mode) == 0o700
    assert sorted(entry.name for entry in folder.path.iterdir()) == [NONCE_FILE]
    assert (folder.path / NONCE_FILE).read_text() == folder.nonce
    assert len(folder.nonce) == 32  # 16 random bytes in hex


def test_two_folders_under_one_parent_are_distinct(tmp_path: Path) -> None:
    first, second = _create(tmp_path), _create(tmp_path)

    assert first.path != second.path
    assert first.nonce != second.nonce


@pytest.mark.parametrize("parent_name", ["does-not-exist", "a-file"])
def test_create_gives_none_without_a_usable_parent_folder(tmp_path: Path, parent_name: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")

    assert SharedFolder.create(str(tmp_path / parent_name)) is None
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["a-file"]


def test_attach_with_the_folders_nonce_sees_the_same_folder(tmp_path: Path) -> None:
    owner = _create(tmp_path)

    attached = SharedFolder.attach(str(owner.path), owner.nonce)

    assert attached is not None
    assert attached.path == owner.path
    assert attached.nonce == owner.nonce


def test_attach_refuses_a_wrong_nonce_a_missing_folder_and_empty_values(tmp_path: Path) -> None:
    owner = _create(tmp_path)
    wrong_nonce = "0" * 32 if owner.nonce != "0" * 32 else "1" * 32

    assert SharedFolder.attach(str(owner.path), wrong_nonce) is None
    assert SharedFolder.attach(str(owner.path), owner.nonce[:-1]) is None  # a prefix is not the nonce
    assert SharedFolder.attach(str(tmp_path / "fedscale_halor_gone"), owner.nonce) is None
    assert SharedFolder.attach(str(tmp_path), owner.nonce) is None  # a folder without a nonce file
    assert SharedFolder.attach("", owner.nonce) is None
    assert SharedFolder.attach(str(owner.path), "") is None
    assert SharedFolder.attach("", "") is None


# write / take -----------------------------------------------------------------------------------------------------
def test_a_payload_written_in_several_buffers_is_taken_back_whole(tmp_path: Path) -> None:
    # Prepare: buffers of every kind a payload is made of, one a view of 4-byte integers
    owner = _create(tmp_path)
    reader = SharedFolder.attach(str(owner.path), owner.nonce)
    assert reader is not None
    integers = array.array("i", [1, 2, 3])
    parts = [b"FSH1", bytearray(b"head"), memoryview(b"blob-bytes")[5:], memoryview(integers), b""]
    expected = b"FSH1" + b"head" + b"bytes" + integers.tobytes()

    # Execute
    name, size = owner.write(parts, "executor_0")
    files_after_write = _payload_files(owner)
    data = reader.take(name, size)

    # Assert
    assert size == 4 + 4 + 5 + 12
    assert files_after_write == [name]
    assert name.startswith("executor_0-") and name.endswith(".bin")
    assert bytes(data) == expected
    assert _payload_files(owner) == []  # the name is gone as soon as it is taken


def test_a_taken_payload_is_a_private_writable_view(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    tensor = torch.arange(100_000, dtype=torch.float32)
    name, size = folder.write([memoryview(tensor.numpy())], "executor_0")

    data = folder.take(name, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it is handed a read-only buffer
        viewed = torch.frombuffer(data, dtype=torch.float32)
    viewed[0] = -1.0

    assert memoryview(data).readonly is False
    assert size == 400_000
    assert torch.equal(viewed[1:], tensor[1:])
    assert viewed[0].item() == -1.0


def test_the_senders_name_is_made_safe_for_a_file_name(tmp_path: Path) -> None:
    folder = _create(tmp_path)

    name, size = folder.write([b"payload"], "../executor 0/x")
    data = folder.take(name, size)

    assert name.startswith("___executor_0_x-")
    assert "/" not in name
    assert bytes(data) == b"payload"


def test_an_empty_payload_is_taken_as_an_empty_buffer(tmp_path: Path) -> None:
    folder = _create(tmp_path)

    name, size = folder.write([], "executor_0")
    data = folder.take(name, size)

    assert size == 0
    assert bytes(data) == b""
    assert _payload_files(folder) == []


@pytest.mark.parametrize("name", ["../outside.bin", "sub/file.bin", "/etc/passwd", "..bin", "payload.txt",
                                  "payload.bin.txt", "payload", "", "a" * 129 + ".bin"])
def test_take_refuses_a_name_this_transport_never_writes(tmp_path: Path, name: str) -> None:
    folder = _create(tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")

    expected = re.escape(f"payload file name {name!r} is not one this transport writes")
    with pytest.raises(SharedMemoryError, match=expected):
        folder.take(name, 6)

    assert outside.read_bytes() == b"secret"


def test_take_refuses_a_missing_file(tmp_path: Path) -> None:
    folder = _create(tmp_path)

    with pytest.raises(SharedMemoryError, match=r"payload file 'executor_0-0123\.bin' cannot be opened: No such file"):
        folder.take("executor_0-0123.bin", 10)


def test_take_refuses_a_file_of_another_size_than_announced_and_removes_it(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    name, size = folder.write([b"0123456789"], "executor_0")

    with pytest.raises(SharedMemoryError, match=re.escape(f"payload file '{name}' has 10 bytes, 11 were announced")):
        folder.take(name, size + 1)

    assert size == 10
    assert _payload_files(folder) == []
    with pytest.raises(SharedMemoryError, match="cannot be opened"):  # consumed: it cannot be taken a second time
        folder.take(name, size)


def test_take_refuses_a_symlink_planted_under_a_valid_name(tmp_path: Path) -> None:
    # Prepare: a link in the folder to a file elsewhere, named like a payload
    folder = _create(tmp_path)
    target = tmp_path / "target.bin"
    target.write_bytes(b"not yours")
    os.symlink(target, folder.path / "executor_0-planted.bin")

    # Execute / Assert
    with pytest.raises(SharedMemoryError, match=r"payload file 'executor_0-planted\.bin' cannot be opened"):
        folder.take("executor_0-planted.bin", len(b"not yours"))
    assert target.read_bytes() == b"not yours"


def test_write_never_follows_or_replaces_an_existing_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the random part of the next name is known, and a link with that name already points elsewhere
    folder = _create(tmp_path)
    target = tmp_path / "target.bin"
    target.write_bytes(b"keep me")
    monkeypatch.setattr("fedscale_halor.transport.shared_memory.secrets.token_hex", lambda _: "fixed")
    os.symlink(target, folder.path / "executor_0-fixed.bin")

    # Execute / Assert
    with pytest.raises(FileExistsError):
        folder.write([b"overwrite"], "executor_0")
    assert target.read_bytes() == b"keep me"


# remove -----------------------------------------------------------------------------------------------------------
def test_remove_deletes_the_owners_folder_with_uncollected_payloads(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    folder.write([b"never collected"], "executor_0")

    folder.remove()
    folder.remove()  # a second time is harmless

    assert not folder.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_remove_does_nothing_for_an_attached_executor(tmp_path: Path) -> None:
    owner = _create(tmp_path)
    attached = SharedFolder.attach(str(owner.path), owner.nonce)
    assert attached is not None
    name, _ = owner.write([b"for the executor"], "aggregator")

    attached.remove()

    assert (owner.path / NONCE_FILE).read_text() == owner.nonce
    assert _payload_files(owner) == [name]


# join_chunks ------------------------------------------------------------------------------------------------------
def _update(values: int) -> ClientUpdate:
    return ClientUpdate(TrainResult(client_id=3, round=2, model_version=1, weights={"w": torch.randn(values)},
                                    num_samples=12, num_steps=3, loss_mean=0.5, loss_square_mean=0.25,
                                    wall_time_s=0.1))


def test_join_chunks_takes_the_payload_a_shared_file_chunk_names(tmp_path: Path) -> None:
    # Prepare
    folder = _create(tmp_path)
    update = _update(1000)
    name, size = folder.write(serde.completion_to_parts(update), "executor_4")

    # Execute
    joined = serde.join_chunks([serde.shared_file_chunk(name, size, "executor_4")], shared=folder)
    received = serde.completion_from_bytes(joined.data)

    # Assert
    assert joined.executor_id == "executor_4"
    assert bytes(joined.data) == serde.completion_to_bytes(update)
    assert isinstance(received, ClientUpdate)
    assert torch.equal(received.result.weights["w"], update.result.weights["w"])
    assert _payload_files(folder) == []


def test_join_chunks_refuses_a_shared_file_when_it_shares_no_folder(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    name, size = folder.write([b"payload"], "executor_0")

    with pytest.raises(serde.MalformedMessageError,
                       match=re.escape(f"names shared-memory file '{name}', but this side shares no folder")):
        serde.join_chunks([serde.shared_file_chunk(name, size, "executor_0")], shared=None)


def test_join_chunks_refuses_chunks_after_a_shared_file(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    name, size = folder.write([b"payload"], "executor_0")
    chunks = [serde.shared_file_chunk(name, size, "executor_0"), pb.Chunk(data=b"more")]

    with pytest.raises(serde.MalformedMessageError, match="chunks follow a payload passed as a shared-memory file"):
        serde.join_chunks(chunks, shared=folder)


def test_join_chunks_reports_a_bad_shared_file_as_a_malformed_message(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    name, size = folder.write([b"payload"], "executor_0")

    expected = re.escape(f"payload file '{name}' has 7 bytes, 8 were announced")
    with pytest.raises(serde.MalformedMessageError, match=expected):
        serde.join_chunks([serde.shared_file_chunk(name, size + 1)], shared=folder)
    with pytest.raises(serde.MalformedMessageError, match=re.escape("'../x.bin' is not one this transport writes")):
        serde.join_chunks([serde.shared_file_chunk("../x.bin", 1)], shared=folder)


def test_join_chunks_refuses_an_oversized_shared_file_before_mapping_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _create(tmp_path)
    name, size = folder.write([b"0123456789"], "executor_0")
    taken: list[str] = []
    monkeypatch.setattr(SharedFolder, "take", lambda self, name, expected_size: taken.append(name))

    with pytest.raises(serde.MessageTooLargeError, match="a payload of 10 bytes was announced; the limit is 9 bytes"):
        serde.join_chunks([serde.shared_file_chunk(name, size)], max_bytes=9, shared=folder)

    assert taken == []
    assert _payload_files(folder) == []  # refused, and not left to hold memory until the job ends


def test_take_refuses_a_directory_or_fifo_planted_under_a_valid_name(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    (folder.path / "planted_dir.bin").mkdir()
    os.mkfifo(folder.path / "planted_fifo.bin")

    with pytest.raises(SharedMemoryError, match=r"'planted_dir\.bin' is not a regular file"):
        folder.take("planted_dir.bin", 0)
    with pytest.raises(SharedMemoryError, match=r"'planted_fifo\.bin' is not a regular file"):
        folder.take("planted_fifo.bin", 0)


def test_a_name_with_a_trailing_newline_is_not_one_this_transport_writes(tmp_path: Path) -> None:
    folder = _create(tmp_path)

    with pytest.raises(SharedMemoryError, match="is not one this transport writes"):
        folder.take("a.bin\n", 1)


def test_attach_compares_odd_nonces_as_bytes_instead_of_failing(tmp_path: Path) -> None:
    folder = _create(tmp_path)
    (folder.path / NONCE_FILE).write_bytes("nonce-é".encode())
    accepted = SharedFolder.attach(str(folder.path), "nonce-é")
    (folder.path / NONCE_FILE).write_bytes(b"\xff\xfe not utf-8")
    refused = SharedFolder.attach(str(folder.path), "nonce-é")

    assert accepted is not None and accepted.path == folder.path
    assert refused is None
