"""Prepared data sets opened as memory maps, and their conversion into model inputs."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedscale_halor.data.integrity import check_labels, check_owners, open_array, verify_checksums
from fedscale_halor.data.prepare import (
    META_FILE,
    TEST_FEATURES_FILE,
    TEST_LABELS_FILE,
    TRAIN_FEATURES_FILE,
    TRAIN_LABELS_FILE,
    TRAIN_OWNERS_FILE,
    prepare_dataset,
    read_meta,
    rerun_remedy,
)
from fedscale_halor.data.prepared_meta import describe_meta

_LABEL_DTYPE = np.dtype(np.int64)
_WARNED_UNVERIFIED: set[Path] = set()

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """A prepared data set: arrays memory-mapped read-only, so a process pages in only the rows it touches.

    Features are stored compactly (uint8 where the source is uint8) and channels first per sample; pass rows of them
    to ``to_model_input`` to get normalised float32 tensors. ``train_owners`` gives the real client of each training
    sample for data sets that have real clients (femnist, google_speech), else None.
    """

    name: str
    train_features: np.ndarray
    train_labels: np.ndarray
    test_features: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    train_owners: np.ndarray | None
    class_names: tuple[str, ...]
    feature_scale: float
    channel_mean: tuple[float, ...]
    channel_std: tuple[float, ...]
    prepared_dir: Path

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test_labels.shape[0])


def load_prepared(prepared_dir: Path, name: str | None = None, data_dir: Path | None = None) -> PreparedDataset:
    """Open an already prepared folder, every file checked (see data/integrity.py); a file that fails a check
    raises InputFileError naming it. ``name`` and ``data_dir`` word the remedy (the prepare command to re-run)."""
    prepared_dir = Path(prepared_dir)
    meta_path = prepared_dir / META_FILE
    meta = read_meta(prepared_dir, rerun_remedy(name or "<dataset>", prepared_dir, data_dir))
    if meta is None:
        raise FileNotFoundError(f"{meta_path}: no prepared data set of the current format here")
    remedy = rerun_remedy(name or str(meta.get("name", "<dataset>")), prepared_dir, data_dir)
    described = describe_meta(meta, meta_path, remedy)
    sample_shape = described.input_shape
    train_labels = open_array(prepared_dir / TRAIN_LABELS_FILE, (described.num_train,), _LABEL_DTYPE, remedy)
    test_labels = open_array(prepared_dir / TEST_LABELS_FILE, (described.num_test,), _LABEL_DTYPE, remedy)
    for file_name, labels in ((TRAIN_LABELS_FILE, train_labels), (TEST_LABELS_FILE, test_labels)):
        check_labels(prepared_dir / file_name, labels, described.num_classes, remedy)
    owners = None
    owners_path = prepared_dir / TRAIN_OWNERS_FILE
    if owners_path.is_file() or described.num_owners > 0:
        owners = open_array(owners_path, (described.num_train,), _LABEL_DTYPE, remedy)
        check_owners(owners_path, owners, remedy)
    dataset = PreparedDataset(
        name=described.name,
        train_features=open_array(prepared_dir / TRAIN_FEATURES_FILE, (described.num_train, *sample_shape),
                                  described.feature_dtype, remedy),
        train_labels=train_labels,
        test_features=open_array(prepared_dir / TEST_FEATURES_FILE, (described.num_test, *sample_shape),
                                 described.feature_dtype, remedy),
        test_labels=test_labels,
        num_classes=described.num_classes,
        input_shape=sample_shape,
        train_owners=owners,
        class_names=described.class_names,
        feature_scale=described.feature_scale,
        channel_mean=described.channel_mean,
        channel_std=described.channel_std,
        prepared_dir=prepared_dir,
    )
    if described.checksums is None:
        _warn_unverified(prepared_dir, remedy)
    else:
        verify_checksums(prepared_dir, described.checksums, remedy)
    return dataset


def _warn_unverified(prepared_dir: Path, remedy: str) -> None:
    # Folders prepared before checksums existed still open: their sizes, shapes, dtypes and labels are checked
    # like any other's, and preparing a large data set again is the user's call, not a surprise on the next start.
    if prepared_dir in _WARNED_UNVERIFIED:
        return
    _WARNED_UNVERIFIED.add(prepared_dir)
    logger.warning("%s: meta.json records no checksums (prepared by an earlier version), so the arrays' contents "
                   "are not verified; %s to add them", prepared_dir, remedy)


def open_dataset(name: str, data_dir: Path, prepared_dir: Path | None = None) -> PreparedDataset:
    """The prepared data set ``name``, preparing it from the raw files of ``data_dir`` on first use."""
    return load_prepared(prepare_dataset(name, Path(data_dir), prepared_dir), name, Path(data_dir))


def to_model_input(dataset: PreparedDataset, raw_rows: np.ndarray) -> torch.Tensor:
    """Stored rows (N, *input_shape) -> float32 tensor scaled and normalised per channel (NCHW for images)."""
    rows = np.asarray(raw_rows)
    if rows.shape[1:] != dataset.input_shape:
        raise ValueError(f"{dataset.name}: rows of shape {rows.shape[1:]} given, samples are {dataset.input_shape}")
    features = torch.from_numpy(rows.astype(np.float32, copy=True))
    if dataset.feature_scale != 1.0:
        features.mul_(dataset.feature_scale)
    mean, std = _normalization(tuple(dataset.channel_mean), tuple(dataset.channel_std), rows.ndim)
    return features.sub_(mean).div_(std)


@functools.lru_cache(maxsize=64)
def _normalization(channel_mean: tuple[float, ...], channel_std: tuple[float, ...],
                   ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and std shaped to broadcast over rows of ``ndim`` dimensions; built once, as making them
    was a third of reading a small client's samples. Read-only: callers never write into them."""
    broadcast_shape = (1, len(channel_mean)) + (1,) * (ndim - 2)
    return (torch.tensor(channel_mean, dtype=torch.float32).reshape(broadcast_shape),
            torch.tensor(channel_std, dtype=torch.float32).reshape(broadcast_shape))
