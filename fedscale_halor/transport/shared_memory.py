"""Payloads passed through files in shared memory between an aggregator and the executors on its own host.

Over loopback, gRPC copies a payload several times on each side; for a model of tens of megabytes sent by every
client every round, those copies cost as much as the training. An executor on the aggregator's host instead writes
the payload into a file in the aggregator's private folder under /dev/shm and sends only the file's name over
gRPC; the receiver maps the file and reads tensors in place, then unlinks it. The gRPC call still carries the job
token, so nothing is accepted from an executor that could not have made the call anyway.

Being on the same host is proved, not assumed: the aggregator writes a random nonce into its folder and tells it to
registering executors; an executor uses the folder only if it reads the same nonce there.

A sender that sends one large payload after another (an executor's updates) writes them into a reusable *slot*
instead: one file it keeps mapped, so that each payload is a plain copy into memory already in place, not a new file
whose every page the kernel must allocate and later free (10 ms against 1 ms for a 26 MB update here). The
receiver copies a slot's payload out before it answers the call that named it, so the slot is free again as soon as
that call returns; a call that fails leaves the slot to the receiver, and the sender starts a new one.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from fedscale_halor.transport.framing import Buffer
from fedscale_halor.transport.receive_buffers import ReceiveBuffers

_log = logging.getLogger("fedscale_halor.transport")

DEFAULT_PARENT = "/dev/shm"
NONCE_FILE = "nonce"
SHARED_MIN_BYTES = 256 * 1024  # smaller payloads are cheaper to stream than to pass as files
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}\.(bin|slot)$")
SLOT_SUFFIX = ".slot"


class SharedMemoryError(ValueError):
    """A payload file that is missing, outside the folder, or not of the announced size."""


class SharedFolder:
    """One job's folder of payload files; the aggregator creates it, executors on its host attach to it."""

    def __init__(self, path: Path, nonce: str, *, owner: bool) -> None:
        self.path = path
        self.nonce = nonce
        self._owner = owner
        self._slot_lock = threading.Lock()
        self._slot_busy = False
        self._slot: _Slot | None = None
        self._receive_buffers = ReceiveBuffers()

    @classmethod
    def create(cls, parent: str = DEFAULT_PARENT) -> SharedFolder | None:
        """A new private folder under ``parent``, or None when there is no usable shared-memory file system."""
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            return None
        path = Path(tempfile.mkdtemp(prefix="fedscale_halor_", dir=parent))  # mode 0700
        nonce = secrets.token_hex(16)
        (path / NONCE_FILE).write_text(nonce)
        return cls(path, nonce, owner=True)

    @classmethod
    def attach(cls, path: str, nonce: str) -> SharedFolder | None:
        """The aggregator's folder if this process sees it (same host, same file system), else None."""
        if not path or not nonce:
            return None
        try:
            seen = (Path(path) / NONCE_FILE).read_bytes()
        except OSError:
            return None
        return cls(Path(path), nonce, owner=False) if secrets.compare_digest(seen, nonce.encode()) else None

    def write(self, parts: Sequence[Buffer], sender: str) -> tuple[str, int]:
        """Write a payload into a new file; returns its name and size."""
        name = _payload_name(sender, ".bin")
        descriptor = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        size = 0
        try:
            for part in parts:
                view = memoryview(part).cast("B")
                while len(view):
                    written = os.write(descriptor, view)
                    view = view[written:]
                    size += written
        except BaseException:
            os.unlink(self.path / name)
            raise
        finally:
            os.close(descriptor)
        return name, size

    @contextlib.contextmanager
    def sending(self, parts: Sequence[Buffer], sender: str) -> Iterator[tuple[str, int]]:
        """Place a payload for one call; yields its file's name and size, for the call made inside the block.

        The payload goes into this folder's slot (a new, larger one when it does not fit) unless another call
        holds the slot, in which case it goes into a one-off file. If the block raises, the receiver may still be
        reading the slot, so it is given up and the next payload starts a new one.
        """
        with self._slot_lock:
            free = not self._slot_busy
            self._slot_busy = True
        if not free:
            yield self.write(parts, sender)
            return
        try:
            size = sum(memoryview(part).nbytes for part in parts)
            if self._slot is None or self._slot.capacity < size:
                self._drop_slot()
                self._slot = _Slot.create(self.path, sender, size)
            self._slot.fill(parts)
            yield self._slot.name, size
        except BaseException:
            self._drop_slot()
            raise
        finally:
            with self._slot_lock:
                self._slot_busy = False

    def detach(self) -> None:
        """The sender is done with the folder: remove its slot."""
        with self._slot_lock:
            if not self._slot_busy:
                self._drop_slot()

    def _drop_slot(self) -> None:
        if self._slot is not None:
            self._slot.close()
            self._slot = None

    def take(self, name: str, expected_size: int) -> Buffer:
        """A payload's bytes. A one-off file is mapped and its name removed: the mapping (a private, writable view)
        lives as long as the tensors decoded from it, and the memory is freed with them. A slot is copied out,
        since its sender reuses it once this call is answered."""
        if name.endswith(SLOT_SUFFIX):
            return self._copy_slot(name, expected_size)
        descriptor, size = self._open_regular(name)
        try:
            os.unlink(self._path_of(name))
            if size != expected_size:
                raise SharedMemoryError(f"payload file {name!r} has {size} bytes, {expected_size} were announced")
            if size == 0:
                return bytearray()
            return memoryview(mmap.mmap(descriptor, size, access=mmap.ACCESS_COPY))
        finally:
            os.close(descriptor)

    def _copy_slot(self, name: str, expected_size: int) -> Buffer:
        descriptor, size = self._open_regular(name)
        try:
            if size < expected_size:
                raise SharedMemoryError(f"payload slot {name!r} has {size} bytes, {expected_size} were announced")
            copy = self._receive_buffers.acquire(expected_size)
            received = os.preadv(descriptor, [copy], 0) if expected_size else 0
            if received != expected_size:
                raise SharedMemoryError(f"payload slot {name!r} gave {received} of {expected_size} bytes")
            return memoryview(copy)
        finally:
            os.close(descriptor)

    def _open_regular(self, name: str) -> tuple[int, int]:
        """A descriptor of the named payload file and its size; it must be a regular file in this folder."""
        path = self._path_of(name)
        try:
            # non-blocking, so that a FIFO planted under a payload's name cannot hang the reader
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            raise SharedMemoryError(f"payload file {name!r} cannot be opened: {error.strerror}") from None
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            os.close(descriptor)
            raise SharedMemoryError(f"payload file {name!r} is not a regular file")
        return descriptor, status.st_size

    def discard(self, name: str) -> None:
        """Delete a payload that will not be read (it was refused), so it does not hold memory until the end. A
        slot stays: its sender owns it."""
        if name.endswith(SLOT_SUFFIX):
            return
        with contextlib.suppress(OSError, SharedMemoryError):
            os.unlink(self._path_of(name))

    def _path_of(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise SharedMemoryError(f"payload file name {name!r} is not one this transport writes")
        return self.path / name

    def remove(self) -> None:
        """Delete the folder and any payload no one collected (the aggregator's side only)."""
        if self._owner:
            shutil.rmtree(self.path, ignore_errors=True)


def _payload_name(sender: str, suffix: str) -> str:
    """A fresh file name that says who sent the payload (made safe for a file name)."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', sender)[:64]}-{secrets.token_hex(8)}{suffix}"


class _Slot:
    """A sender's reusable payload file, mapped writable for as long as the sender keeps it."""

    def __init__(self, path: Path, capacity: int, mapping: mmap.mmap) -> None:
        self.path = path
        self.name = path.name
        self.capacity = capacity
        self.mapping = mapping

    @classmethod
    def create(cls, folder: Path, sender: str, size: int) -> _Slot:
        capacity = max(size, 1)
        path = folder / _payload_name(sender, SLOT_SUFFIX)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(descriptor, capacity)
            return cls(path, capacity, mmap.mmap(descriptor, capacity, access=mmap.ACCESS_WRITE))
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(descriptor)

    def fill(self, parts: Sequence[Buffer]) -> None:
        offset = 0
        for part in parts:
            view = memoryview(part).cast("B")
            self.mapping[offset:offset + len(view)] = view
            offset += len(view)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self.mapping.close()
