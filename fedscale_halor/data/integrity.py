"""Checks that a prepared folder's files are what prepare wrote, done when the folder is opened.

Every check names the file, says what is wrong and passes on the caller's remedy (re-running prepare). Headers,
sizes, shapes, dtypes and labels are checked on every open: they cost a few reads, and labels are small. The
contents are checked against the sha256 that prepare recorded in meta.json, but hashing a large array on every open
would make each executor read the whole file, which memory-mapping exists to avoid. So a file is hashed once, and
its size and modification time are then stamped in ``verified.json``; an open whose file still has the stamped
size and time skips the hash. Any write changes the time, so what this misses is a deliberate edit that restores
the time: the checksum guards against accidents (a truncated copy, a disk error), not against an adversary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.errors import InputFileError

VERIFIED_FILE = "verified.json"
_HASH_CHUNK_BYTES = 8 * 2**20

logger = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_header(path: Path, remedy: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the values) from a .npy header, read without loading or unpickling anything."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputFileError(path, "missing", remedy) from None
    if size == 0:
        raise InputFileError(path, "empty (0 bytes)", remedy)
    with path.open("rb") as stream:
        try:
            version = np.lib.format.read_magic(stream)
        except ValueError:
            raise InputFileError(path, "not a NumPy .npy file (it does not start with the .npy magic bytes)",
                                 remedy) from None
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise InputFileError(path, f".npy format version {version[0]}.{version[1]} is not one prepare writes",
                                 remedy)
        try:
            shape, _, dtype = readers[version](stream)
        except ValueError as error:
            raise InputFileError(path, f"unreadable .npy header ({error})", remedy) from None
        return tuple(int(side) for side in shape), dtype, stream.tell()


def open_array(path: Path, shape: tuple[int, ...], dtype: np.dtype, remedy: str) -> np.ndarray:
    """The array at ``path`` memory-mapped read-only, once its header, size, shape and dtype are as expected."""
    found_shape, found_dtype, offset = _read_header(path, remedy)
    if found_dtype.hasobject:
        # Loading it would mean unpickling, which can run code; prepared arrays never hold objects.
        raise InputFileError(path, "holds Python objects (dtype object), not numbers; it is refused unread", remedy)
    expected_bytes = offset + int(np.prod(found_shape, dtype=np.int64)) * found_dtype.itemsize
    actual_bytes = path.stat().st_size
    if actual_bytes < expected_bytes:
        raise InputFileError(path, f"truncated: {actual_bytes} bytes, but its header describes {expected_bytes} "
                                   f"(shape {found_shape}, {found_dtype})", remedy)
    if actual_bytes > expected_bytes:
        raise InputFileError(path, f"{actual_bytes} bytes, {actual_bytes - expected_bytes} more than its header "
                                   f"describes (shape {found_shape}, {found_dtype})", remedy)
    if found_dtype != dtype:
        raise InputFileError(path, f"holds {found_dtype} values, expected {dtype}", remedy)
    if found_shape != shape:
        raise InputFileError(path, f"holds an array of shape {found_shape}, expected {shape} (from meta.json)",
                             remedy)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputFileError(path, f"cannot be memory-mapped ({error})", remedy) from None


def check_labels(path: Path, labels: np.ndarray, num_classes: int, remedy: str) -> None:
    """Every label in [0, num_classes): an out-of-range one would fail every client that draws it, every round."""
    values = np.asarray(labels)
    bad = np.flatnonzero((values < 0) | (values >= num_classes))
    if len(bad):
        others = f" ({len(bad)} labels in all)" if len(bad) > 1 else ""
        raise InputFileError(path, f"label {int(values[bad[0]])} at row {int(bad[0])} is outside [0, {num_classes}) "
                                   f"for {num_classes} classes (meta.json's num_classes){others}", remedy)


def check_owners(path: Path, owners: np.ndarray, remedy: str) -> None:
    values = np.asarray(owners)
    bad = np.flatnonzero(values < 0)
    if len(bad):
        raise InputFileError(path, f"owner {int(values[bad[0]])} at row {int(bad[0])} is negative", remedy)


def _read_stamps(folder: Path) -> dict[str, Any]:
    # A missing or damaged stamp file only costs a hash: it is a record of past checks, never trusted for more.
    try:
        stamps = json.loads((folder / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(folder: Path, stamps: Mapping[str, Any]) -> None:
    temporary = folder / f".{VERIFIED_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        temporary.write_text(json.dumps(stamps, indent=2, sort_keys=True))
        os.replace(temporary, folder / VERIFIED_FILE)
    except OSError as error:
        # A read-only folder still opens; each open then hashes the arrays again.
        logger.info("could not record the verified checksums in %s: %s", folder, error)
    finally:
        temporary.unlink(missing_ok=True)


def verify_checksums(folder: Path, checksums: Mapping[str, str], remedy: str) -> None:
    """Each file of ``checksums`` (name -> sha256) hashes to its digest; hashed only when its stamp is stale."""
    stamps = _read_stamps(folder)
    current: dict[str, Any] = {}
    for name, digest in sorted(checksums.items()):
        path = folder / name
        stat = path.stat()
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        if stamps.get(name) != stamp:
            actual = file_sha256(path)
            if actual != digest:
                raise InputFileError(path, f"its contents changed since prepare wrote it (sha256 {actual[:16]}..., "
                                           f"meta.json records {digest[:16]}...)", remedy)
        current[name] = stamp
    if current != stamps:
        _write_stamps(folder, current)
