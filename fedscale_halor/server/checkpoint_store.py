"""The files of a checkpoint on disk: written durably, checked against their recorded sha256, and rotated so that the
previous complete checkpoint survives until the next one is complete.

Layout of a checkpoint folder::

    model.safetensors, strategy.safetensors, halor_*.json   the latest checkpoint
    state.json                                             written last: the round, and every file's size and sha256
    previous/                                              the checkpoint before it, the same files
    .incoming/                                             only while a checkpoint is being written

A checkpoint is written whole into ``.incoming/`` first. Then the latest one becomes ``previous/`` (hard links of its
files, renamed into place at once), the latest ``state.json`` is removed, the new files are renamed over the old
ones and the new ``state.json`` comes last. Whatever step a crash interrupts, either the latest folder is complete
or ``state.json`` is missing there while ``.incoming/state.json`` exists, and ``previous/`` is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "state.json"
PREVIOUS_DIR = "previous"
INCOMING_DIR = ".incoming"
_PREVIOUS_STAGING_DIR = ".previous-staging"
_RETIRED_DIR = ".retired"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int

    def to_json(self) -> dict[str, object]:
        return {"sha256": self.sha256, "bytes": self.size}


def write_bytes_durably(path: Path, data: bytes) -> FileDigest:
    """Write ``data`` to a temporary file beside ``path``, flush and fsync it, rename it over ``path``, fsync the
    folder; returns the digest of what was written."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return FileDigest(hashlib.sha256(data).hexdigest(), len(data))


def seal_written_file(temporary: Path, path: Path) -> FileDigest:
    """For a file another library wrote to ``temporary``: fsync it, digest what is on disk, rename it over
    ``path`` and fsync the folder."""
    try:
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
            digest = digest_of(handle)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return digest


def digest_of(handle: object) -> FileDigest:
    hasher, size = hashlib.sha256(), 0
    while chunk := handle.read(_CHUNK):  # type: ignore[attr-defined]
        hasher.update(chunk)
        size += len(chunk)
    return FileDigest(hasher.hexdigest(), size)


def fsync_folder(folder: Path) -> None:
    # a rename is durable only once the folder holding the new name is
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_tree(folder: Path) -> None:
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.exists() or folder.is_symlink():
        folder.unlink()


def keep_as_previous(folder: Path, names: Iterable[str]) -> None:
    """Make the latest checkpoint's files ``names`` (``state.json`` among them) the new ``previous/``, in one
    rename; the latest files themselves stay where they are."""
    staging, retired = folder / _PREVIOUS_STAGING_DIR, folder / _RETIRED_DIR
    remove_tree(staging)
    remove_tree(retired)
    staging.mkdir()
    for name in names:
        _link_or_copy(folder / name, staging / name)
    fsync_folder(staging)
    previous = folder / PREVIOUS_DIR
    if previous.exists():
        os.replace(previous, retired)
    os.replace(staging, previous)
    fsync_folder(folder)
    remove_tree(retired)


def install_incoming(folder: Path, names: Iterable[str], stale: Iterable[str]) -> None:
    """Move the complete checkpoint in ``.incoming/`` (files ``names``, then its ``state.json``) over the latest
    one, removing the latest files ``stale`` that the new checkpoint does not have."""
    incoming = folder / INCOMING_DIR
    # without its state.json the latest folder reads as unfinished until the new one is whole
    (folder / STATE_FILE).unlink(missing_ok=True)
    fsync_folder(folder)
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    for name in names:
        os.replace(incoming / name, folder / name)
    os.replace(incoming / STATE_FILE, folder / STATE_FILE)
    fsync_folder(folder)
    remove_tree(incoming)


def interrupted_install(folder: Path) -> bool:
    """A crash came while a complete new checkpoint replaced the latest one: the latest ``state.json`` is gone and
    the new one still waits in ``.incoming/``; ``previous/`` holds the checkpoint the latest folder held."""
    return not (folder / STATE_FILE).exists() and (folder / INCOMING_DIR / STATE_FILE).is_file()


def check_file(path: Path, expected: FileDigest | None) -> bytes:
    """The bytes of ``path``, checked against its recorded digest when there is one; raises ``CorruptFileError``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptFileError(path, "missing, though state.json lists it" if expected else "missing") from None
    except OSError as error:
        raise CorruptFileError(path, f"cannot be read ({error})") from None
    if expected is not None:
        check_size(path, len(data), expected)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected.sha256:
            raise CorruptFileError(path, f"corrupt: its sha256 {actual[:16]}... differs from the "
                                         f"{expected.sha256[:16]}... that state.json records")
    return data


def check_present(files: Mapping[str, FileDigest], folder: Path) -> None:
    """Every recorded file is there with its recorded size (cheap: no file is read)."""
    for name, expected in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CorruptFileError(path, "missing, though state.json lists it") from None
        check_size(path, size, expected)


def check_size(path: Path, size: int, expected: FileDigest) -> None:
    if size < expected.size:
        raise CorruptFileError(path, f"truncated: {size} bytes where state.json records {expected.size}")
    if size != expected.size:
        raise CorruptFileError(path, f"{size} bytes where state.json records {expected.size}")


class CorruptFileError(Exception):
    """A checkpoint file that does not match its record; the checkpoint module adds what to do about it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)
        with open(target, "rb") as handle, contextlib.suppress(OSError):
            os.fsync(handle.fileno())
