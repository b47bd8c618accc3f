"""Convert a data set's raw files, once, into arrays that executors memory-map.

A prepared folder holds train_x.npy, train_y.npy, test_x.npy, test_y.npy, train_owner.npy (data sets with real
clients only) and meta.json. It is written in a hidden staging folder beside its destination and renamed into place,
so a killed prepare never leaves a half-written folder, and of several processes preparing at once one wins the
rename and the others use the winner's files.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.data.datasets.base import README_HINT, RawDataset
from fedscale_halor.data.datasets.registry import loader_for
from fedscale_halor.data.integrity import file_sha256
from fedscale_halor.errors import InputFileError

FORMAT_VERSION = 1
META_FILE = "meta.json"
TRAIN_FEATURES_FILE = "train_x.npy"
TRAIN_LABELS_FILE = "train_y.npy"
TEST_FEATURES_FILE = "test_x.npy"
TEST_LABELS_FILE = "test_y.npy"
TRAIN_OWNERS_FILE = "train_owner.npy"
ARRAY_FILES = (TRAIN_FEATURES_FILE, TRAIN_LABELS_FILE, TEST_FEATURES_FILE, TEST_LABELS_FILE, TRAIN_OWNERS_FILE)
DEFAULT_PREPARED_FOLDER = "prepared"
_STATISTICS_CHUNK_ROWS = 4096
_MIN_STD = 1e-8
ABANDONED_AFTER_S = 6 * 3600.0

logger = logging.getLogger(__name__)


def default_prepared_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DEFAULT_PREPARED_FOLDER


def prepare_command(name: str, prepared_dir: Path, data_dir: Path | None = None) -> str:
    """The command line that prepares ``name`` into ``prepared_dir`` again, for error messages."""
    prepared_dir = Path(prepared_dir)
    if data_dir is None and prepared_dir.name == DEFAULT_PREPARED_FOLDER:
        data_dir = prepared_dir.parent
    words = ["fedscale-halor", "prepare", name]
    if data_dir is not None:
        words += ["--data-dir", str(data_dir)]
    if data_dir is None or prepared_dir != default_prepared_dir(Path(data_dir)):
        words += ["--prepared-dir", str(prepared_dir)]
    return shlex.join([*words, "--force"])


def rerun_remedy(name: str, prepared_dir: Path, data_dir: Path | None = None) -> str:
    return f"re-run `{prepare_command(name, prepared_dir, data_dir)}`"


def read_meta(prepared_dir: Path, remedy: str = "") -> dict[str, Any] | None:
    """The folder's meta.json when it describes a complete folder of the current format; None when it is absent
    (the folder is incomplete) or of another format version (outdated), so that prepare writes the folder again.

    A meta.json that is there but is not a JSON object is damage, not an unfinished prepare: it raises
    InputFileError with ``remedy``, rather than have the folder replaced without a word.
    """
    path = Path(prepared_dir) / META_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputFileError(path, f"cannot be read ({error.strerror or error})", remedy) from None
    try:
        meta = json.loads(text)
    except ValueError as error:
        raise InputFileError(path, f"not valid JSON ({error})", remedy) from None
    if not isinstance(meta, dict):
        raise InputFileError(path, f"expected a JSON object, found a JSON {type(meta).__name__}", remedy)
    if meta.get("format_version") != FORMAT_VERSION:
        return None
    return meta


def channel_statistics(features: np.ndarray, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (axis 1) mean and standard deviation of ``features * scale``, read in chunks to bound memory.

    A channel with no spread gets a standard deviation of 1 so that normalising it never divides by zero.
    """
    num_channels = features.shape[1] if features.ndim > 1 else 1
    if len(features) == 0:
        return (0.0,) * num_channels, (1.0,) * num_channels
    total = np.zeros(num_channels, dtype=np.float64)
    total_square = np.zeros(num_channels, dtype=np.float64)
    for start in range(0, len(features), _STATISTICS_CHUNK_ROWS):
        chunk = np.asarray(features[start:start + _STATISTICS_CHUNK_ROWS], dtype=np.float64).reshape(
            -1, num_channels, int(np.prod(features.shape[2:], dtype=np.int64))) * scale
        total += chunk.sum(axis=(0, 2))
        total_square += np.square(chunk).sum(axis=(0, 2))
    values_per_channel = features.size / num_channels
    mean = total / values_per_channel
    std = np.sqrt(np.maximum(total_square / values_per_channel - np.square(mean), 0.0))
    std = np.where(std < _MIN_STD, 1.0, std)
    return tuple(float(value) for value in mean), tuple(float(value) for value in std)


def write_prepared(raw: RawDataset, name: str, folder: Path) -> None:
    """Write the arrays and meta.json of ``raw`` into an existing, empty ``folder``."""
    np.save(folder / TRAIN_FEATURES_FILE, np.ascontiguousarray(raw.train_features))
    np.save(folder / TRAIN_LABELS_FILE, raw.train_labels.astype(np.int64))
    np.save(folder / TEST_FEATURES_FILE, np.ascontiguousarray(raw.test_features))
    np.save(folder / TEST_LABELS_FILE, raw.test_labels.astype(np.int64))
    if raw.train_owners is not None:
        np.save(folder / TRAIN_OWNERS_FILE, raw.train_owners.astype(np.int64))
    mean, std = channel_statistics(raw.train_features, raw.feature_scale)
    # Hashed from the written files, so that opening the folder can tell a damaged copy from what was written.
    checksums = {name: file_sha256(folder / name) for name in ARRAY_FILES if (folder / name).is_file()}
    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "num_classes": raw.num_classes,
        "input_shape": list(raw.input_shape),
        "class_names": list(raw.class_names),
        "feature_dtype": str(raw.train_features.dtype),
        "feature_scale": raw.feature_scale,
        "channel_mean": list(mean),
        "channel_std": list(std),
        "num_train": len(raw.train_labels),
        "num_test": len(raw.test_labels),
        "num_owners": int(raw.train_owners.max()) + 1 if raw.train_owners is not None and len(raw.train_owners) else 0,
        "sha256": checksums,
    }
    # meta.json last: its presence is what marks the folder complete.
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))


def _check_name(meta: dict[str, Any], name: str, prepared_dir: Path) -> None:
    if meta.get("name") != name:
        raise InputFileError(prepared_dir, f"holds the prepared data set {meta.get('name')!r}, not {name!r}",
                             f"give {name!r} its own data_dir or prepared_dir")


def _read_raw(name: str, data_dir: Path) -> RawDataset:
    """The loader's result; its checks of the raw files become InputFileError, the message the command line shows."""
    try:
        return loader_for(name)(data_dir)
    except InputFileError:
        raise
    except ValueError as error:
        raise InputFileError(data_dir, f"the raw files of {name} cannot be used: {error}", README_HINT) from None


def _move_aside_and_delete(folder: Path) -> None:
    aside = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return  # another process moved it first
    shutil.rmtree(aside, ignore_errors=True)


def remove_abandoned_staging(target: Path, older_than_s: float = ABANDONED_AFTER_S) -> list[Path]:
    """Delete staging and set-aside folders of ``target`` left by killed prepares; return what was deleted.

    Only folders untouched for ``older_than_s`` go: a live prepare writes into its staging folder within minutes.
    """
    if not target.parent.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            try:
                if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)
                    removed.append(leftover)
            except FileNotFoundError:
                continue  # another process removed it first
    return removed


def publish(staging: Path, target: Path, replace: bool) -> bool:
    """Rename a complete ``staging`` folder to ``target``; True if it won, False if a complete target was kept.

    Without ``replace``, a complete target (another process's) wins and staging is left for the caller to delete;
    an incomplete or outdated target is replaced.
    """
    if target.exists() and (replace or read_meta(target) is None):
        _move_aside_and_delete(target)
    try:
        os.rename(staging, target)
    except OSError:
        if read_meta(target) is None:
            raise
        return False
    return True


def prepare_dataset(name: str, data_dir: Path, prepared_dir: Path | None = None, force: bool = False) -> Path:
    """Prepare ``name`` from the raw files in ``data_dir``; return the prepared folder (default data_dir/prepared).

    Returns at once when the folder is already prepared, unless ``force``. A missing raw file raises
    MissingRawFileError naming it. ``force`` is meant for one user at a time, not for concurrent executors.
    """
    loader_for(name)  # an unknown name fails before any folder is looked at
    data_dir = Path(data_dir)
    target = Path(prepared_dir) if prepared_dir is not None else default_prepared_dir(data_dir)
    remedy = rerun_remedy(name, target, data_dir)
    if not force:
        meta = read_meta(target, remedy)
        if meta is not None:
            _check_name(meta, name, target)
            return target
    logger.info("preparing %s from %s into %s", name, data_dir, target)
    raw = _read_raw(name, data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # mkdtemp makes the folder private (0700); the published folder must be readable by every executor's user.
    staging.chmod(0o755)
    try:
        write_prepared(raw, name, staging)
        if not publish(staging, target, replace=force):
            logger.info("%s was prepared by another process meanwhile; using its files", target)
            meta = read_meta(target, remedy)
            if meta is not None:
                _check_name(meta, name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
