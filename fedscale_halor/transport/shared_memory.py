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

An aggregator killed with SIGKILL cannot remove its folder, and /dev/shm is memory until the next boot, so each
folder's name records its owner: ``fedscale_halor_<pid>-<start>-<pidns>_<random>``, where ``<start>`` is the
process's start time in clock ticks after boot (/proc/<pid>/stat, field 22: a pid reused by a later process has
another) and ``<pidns>`` the inode of its pid namespace. Each ``SharedFolder.create`` first sweeps the parent
folder, removing, of this user's ``fedscale_halor_*`` folders (never a link or a file):

- those whose owner is dead: no process of that pid, a zombie, or a process of that pid that started at another
  time;
- those named by an older version, without an owner, last modified more than an hour ago (UNOWNED_MAX_AGE_S):
  a live job writes and removes payload files in its folder every round, which renews the folder's time.

A folder whose owner lives in another pid namespace (a container sharing /dev/shm) is never removed: its pid means
nothing here. Each removal is logged with the folder and the dead pid.
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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.transport.framing import Buffer
from fedscale_halor.transport.receive_buffers import ReceiveBuffers

_log = logging.getLogger("fedscale_halor.transport")

DEFAULT_PARENT = "/dev/shm"
PARENT_VARIABLE = "FEDSCALE_HALOR_SHM_PARENT"  # moves the folders elsewhere (tests; a host without /dev/shm)
FOLDER_PREFIX = "fedscale_halor_"
UNOWNED_MAX_AGE_S = 3600.0
_OWNED_NAME = re.compile(r"^fedscale_halor_(\d+)-(\d+)-(\d+)_[A-Za-z0-9_]+$")
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
        try:
            sweep_stale_folders(parent)
        except OSError as error:  # a parent that cannot be listed still takes a new folder
            _log.warning("could not look for stale shared-memory folders in %s: %s", parent, error)
        path = Path(tempfile.mkdtemp(prefix=FolderOwner.of_this_process().prefix(), dir=parent))  # mode 0700
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


def default_parent() -> str:
    """Where aggregators make their folders: $FEDSCALE_HALOR_SHM_PARENT, else /dev/shm. Read at each call, not at
    import, so that one job (or test) can move it."""
    return os.environ.get(PARENT_VARIABLE) or DEFAULT_PARENT


@dataclass(frozen=True)
class FolderOwner:
    """The process that made a folder, as its name records it."""

    pid: int
    start_time: int  # clock ticks after boot; 0 where /proc cannot tell
    pid_namespace: int  # inode of the owner's pid namespace; 0 where /proc cannot tell

    @classmethod
    def of_this_process(cls) -> FolderOwner:
        pid = os.getpid()
        try:
            start_time = _start_time(pid) or 0
        except OSError:
            start_time = 0
        return cls(pid, start_time, _pid_namespace())

    @classmethod
    def from_name(cls, name: str) -> FolderOwner | None:
        """The owner a folder's name records; None for a name without one (an older version's folder)."""
        match = _OWNED_NAME.fullmatch(name)
        return None if match is None else cls(*(int(group) for group in match.groups()))

    def prefix(self) -> str:
        # the '-' separators cannot occur in the random part mkdtemp appends, so no old name parses as owned
        return f"{FOLDER_PREFIX}{self.pid}-{self.start_time}-{self.pid_namespace}_"

    def is_alive(self) -> bool | None:
        """False when the owner is dead, None when this process cannot tell (another pid namespace)."""
        if self.pid_namespace != _pid_namespace():
            return None
        if self.start_time == 0:  # no /proc when the folder was made: the pid is all there is
            return _pid_exists(self.pid)
        try:
            return _start_time(self.pid) == self.start_time
        except OSError:
            return None


def sweep_stale_folders(parent: str | Path, *, now: float | None = None) -> list[Path]:
    """Remove the folders under ``parent`` that aggregators left behind when they died (the rules are in the
    module's docstring); returns the folders removed."""
    now = time.time() if now is None else now
    removed = []
    with os.scandir(parent) as entries:
        candidates = [entry for entry in entries if entry.name.startswith(FOLDER_PREFIX)]
    for entry in candidates:
        try:
            status = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            continue
        owner = FolderOwner.from_name(entry.name)
        if owner is not None:
            if owner.is_alive() is not False:
                continue
            reason = f"its aggregator, pid {owner.pid}, is dead"
        else:
            age_s = now - status.st_mtime
            if age_s < UNOWNED_MAX_AGE_S:
                continue
            reason = f"it records no owner and was last modified {age_s / 3600:.1f} h ago"
        path = Path(entry.path)
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            _log.warning("could not remove the stale shared-memory folder %s (%s)", path, reason)
        else:
            _log.info("removed the stale shared-memory folder %s: %s", path, reason)
            removed.append(path)
    return removed


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot; None when there is no such process, or only its
    zombie (dead, waiting for its parent to reap it). Raises OSError when /proc cannot be read."""
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # after "pid (comm) ": comm may hold spaces and parentheses, so split after the last ')'; field 3 (the state)
    # comes first, field 22 (the start time) 19 places later
    fields = line[line.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
