"""Payloads passed through files in shared memory between an aggregator and the executors on its own host.

Over loopback, gRPC copies a payload several times on each side; for a model of tens of megabytes sent by every
client every round, those copies cost as much as the training. An executor on the aggregator's host instead writes
the payload into a file in the aggregator's private folder under /dev/shm and sends only the file's name over
gRPC; the receiver maps the file and reads tensors in place, then unlinks it. The gRPC call still carries the job
token, so nothing is accepted from an executor that could not have made the call anyway.

Being on the same host is proved, not assumed: the aggregator writes a random nonce into its folder and tells it to
registering executors; an executor uses the folder only if it reads the same nonce there.
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
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.transport.framing import Buffer

_log = logging.getLogger("fedscale_halor.transport")

DEFAULT_PARENT = "/dev/shm"
NONCE_FILE = "nonce"
SHARED_MIN_BYTES = 256 * 1024  # smaller payloads are cheaper to stream than to pass as files
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}\.bin$")


class SharedMemoryError(ValueError):
    """A payload file that is missing, outside the folder, or not of the announced size."""


class SharedFolder:
    """One job's folder of payload files; the aggregator creates it, executors on its host attach to it."""

    def __init__(self, path: Path, nonce: str, *, owner: bool) -> None:
        self.path = path
        self.nonce = nonce
        self._owner = owner

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
        name = f"{re.sub(r'[^A-Za-z0-9_-]', '_', sender)[:64]}-{secrets.token_hex(8)}.bin"
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

    def take(self, name: str, expected_size: int) -> Buffer:
        """Map a payload file and remove its name: the mapping (a private, writable view) lives as long as the
        tensors decoded from it, and the memory is freed with them."""
        path = self._path_of(name)
        try:
            # non-blocking, so that a FIFO planted under a payload's name cannot hang the reader
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            raise SharedMemoryError(f"payload file {name!r} cannot be opened: {error.strerror}") from None
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise SharedMemoryError(f"payload file {name!r} is not a regular file")
            os.unlink(path)
            size = status.st_size
            if size != expected_size:
                raise SharedMemoryError(f"payload file {name!r} has {size} bytes, {expected_size} were announced")
            if size == 0:
                return bytearray()
            return memoryview(mmap.mmap(descriptor, size, access=mmap.ACCESS_COPY))
        finally:
            os.close(descriptor)

    def discard(self, name: str) -> None:
        """Delete a payload that will not be read (it was refused), so it does not hold memory until the end."""
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
