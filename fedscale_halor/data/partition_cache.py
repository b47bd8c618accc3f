"""Partitions cached on disk beside the prepared arrays, keyed by a hash of everything they depend on.

Every executor of a job asks for the same partition; the first computes and saves it, the others load it. Files are
written under a temporary name and renamed into place, so readers never see half a file; two processes computing the
same partition at once write identical contents, so whichever rename lands last is as good as the first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from fedscale_halor.data.partition import (
    CLASS_FILTER_SCHEMES,
    DIRICHLET_LABEL_SPLIT,
    HALOR_DIRICHLET,
    REAL_CLIENTS,
    ZIPF,
    partition_indices,
)
from fedscale_halor.data.store import PreparedDataset

CACHE_FOLDER = "partitions"
# 2: code 8 became Halor's Dirichlet scheme (the label split moved to 9), and the key gained its settings.
CACHE_FORMAT_VERSION = 2

logger = logging.getLogger(__name__)


def _digest(array: np.ndarray | None) -> str:
    if array is None:
        return "none"
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def partition_key(dataset: PreparedDataset, num_clients: int, scheme: int, seed: int, dirichlet_alpha: float,
                  zipf_param: float, *, num_classes: int = 0, samples_per_client: int = 0,
                  removed_classes: int = 0) -> str:
    """A hex digest of what the partition depends on: the labels (owners for real clients) and the config values.

    Values a scheme ignores are left out, so that changing them does not duplicate the cached file.
    """
    real_clients = scheme == REAL_CLIENTS
    halor = scheme == HALOR_DIRICHLET
    filtered = removed_classes > 0 and scheme in CLASS_FILTER_SCHEMES
    inputs = {
        "version": CACHE_FORMAT_VERSION,
        "dataset": dataset.name,
        "scheme": scheme,
        "labels": _digest(dataset.train_labels),
        "owners": _digest(dataset.train_owners) if real_clients else None,
        "num_clients": None if real_clients else num_clients,
        "seed": None if real_clients else seed,
        "dirichlet_alpha": float(dirichlet_alpha) if scheme in (HALOR_DIRICHLET, DIRICHLET_LABEL_SPLIT) else None,
        "zipf_param": float(zipf_param) if scheme == ZIPF else None,
        # 0 means the training set split evenly, so the resolved count is what the partition depends on.
        "samples_per_client": (samples_per_client or dataset.num_train // max(num_clients, 1)) if halor else None,
        "num_classes": int(num_classes) if halor or filtered else None,
        "removed_classes": int(removed_classes) if filtered else None,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def cache_path(dataset: PreparedDataset, key: str) -> Path:
    return dataset.prepared_dir / CACHE_FOLDER / f"{dataset.name}-{key[:24]}.npz"


def save_partition(path: Path, partitions: list[np.ndarray]) -> None:
    """Write ``partitions`` as one flat index array plus offsets, atomically."""
    flat = np.concatenate(partitions) if partitions else np.empty(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(part) for part in partitions], dtype=np.int64)])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as stream:
            np.savez(stream, flat=flat.astype(np.int64), offsets=offsets.astype(np.int64))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_partition(path: Path, num_samples: int | None = None) -> list[np.ndarray] | None:
    """The partitions saved at ``path``, or None when the file is absent or unusable.

    An unusable file (truncated, corrupt, or holding rows outside the ``num_samples`` training rows) is logged and
    reported as absent, so that the partition is computed and saved again. A cache holds nothing that cannot be
    recomputed from the prepared arrays, so refusing to start over it would only make the user delete it by hand.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            flat, offsets = np.asarray(saved["flat"]), np.asarray(saved["offsets"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        return _unusable(path, f"unreadable ({type(error).__name__}: {error})")
    problem = _layout_problem(flat, offsets, num_samples)
    if problem:
        return _unusable(path, problem)
    return [flat[offsets[client]:offsets[client + 1]] for client in range(len(offsets) - 1)]


def _layout_problem(flat: np.ndarray, offsets: np.ndarray, num_samples: int | None) -> str:
    if flat.ndim != 1 or offsets.ndim != 1 or not np.issubdtype(flat.dtype, np.integer) or not np.issubdtype(
            offsets.dtype, np.integer):
        return "its arrays are not one-dimensional integer arrays"
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(flat) or np.any(np.diff(offsets) < 0):
        return f"its offsets do not split its {len(flat)} rows into clients"
    if num_samples is not None and len(flat) and (flat.min() < 0 or flat.max() >= num_samples):
        return f"it names rows outside the {num_samples} training samples"
    return ""


def _unusable(path: Path, problem: str) -> None:
    logger.warning("partition cache %s: %s; computing the partition again", path, problem)
    return None


def cached_partition(dataset: PreparedDataset, num_clients: int, scheme: int, seed: int, *,
                     dirichlet_alpha: float = 0.5, zipf_param: float = 1.95, num_classes: int = 0,
                     samples_per_client: int = 0, removed_classes: int = 0) -> list[np.ndarray]:
    """``partition_indices`` of the data set's training labels, loaded from the cache when it was computed before."""
    settings = {"num_classes": num_classes, "samples_per_client": samples_per_client,
                "removed_classes": removed_classes}
    path = cache_path(dataset, partition_key(dataset, num_clients, scheme, seed, dirichlet_alpha, zipf_param,
                                             **settings))
    cached = load_partition(path, dataset.num_train)
    if cached is not None:
        return cached
    partitions = partition_indices(np.asarray(dataset.train_labels), num_clients, scheme, seed,
                                   dirichlet_alpha=dirichlet_alpha, zipf_param=zipf_param,
                                   owners=None if dataset.train_owners is None else np.asarray(dataset.train_owners),
                                   **settings)
    try:
        save_partition(path, partitions)
    except OSError as error:
        # A read-only data folder still works; each process then computes the partition itself.
        logger.warning("could not cache the partition at %s: %s", path, error)
    return partitions
