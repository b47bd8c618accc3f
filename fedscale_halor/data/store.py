"""Prepared data sets opened as memory maps, and their conversion into model inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedscale_halor.data.prepare import (
    META_FILE,
    TEST_FEATURES_FILE,
    TEST_LABELS_FILE,
    TRAIN_FEATURES_FILE,
    TRAIN_LABELS_FILE,
    TRAIN_OWNERS_FILE,
    prepare_dataset,
    read_meta,
)


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


def load_prepared(prepared_dir: Path) -> PreparedDataset:
    """Open an already prepared folder."""
    prepared_dir = Path(prepared_dir)
    meta = read_meta(prepared_dir)
    if meta is None:
        raise FileNotFoundError(f"{prepared_dir / META_FILE}: no prepared data set of the current format here")
    owners_path = prepared_dir / TRAIN_OWNERS_FILE
    return PreparedDataset(
        name=str(meta["name"]),
        train_features=np.load(prepared_dir / TRAIN_FEATURES_FILE, mmap_mode="r"),
        train_labels=np.load(prepared_dir / TRAIN_LABELS_FILE, mmap_mode="r"),
        test_features=np.load(prepared_dir / TEST_FEATURES_FILE, mmap_mode="r"),
        test_labels=np.load(prepared_dir / TEST_LABELS_FILE, mmap_mode="r"),
        num_classes=int(meta["num_classes"]),
        input_shape=tuple(int(size) for size in meta["input_shape"]),
        train_owners=np.load(owners_path, mmap_mode="r") if owners_path.is_file() else None,
        class_names=tuple(str(name) for name in meta["class_names"]),
        feature_scale=float(meta["feature_scale"]),
        channel_mean=tuple(float(value) for value in meta["channel_mean"]),
        channel_std=tuple(float(value) for value in meta["channel_std"]),
        prepared_dir=prepared_dir,
    )


def open_dataset(name: str, data_dir: Path, prepared_dir: Path | None = None) -> PreparedDataset:
    """The prepared data set ``name``, preparing it from the raw files of ``data_dir`` on first use."""
    return load_prepared(prepare_dataset(name, Path(data_dir), prepared_dir))


def to_model_input(dataset: PreparedDataset, raw_rows: np.ndarray) -> torch.Tensor:
    """Stored rows (N, *input_shape) -> float32 tensor scaled and normalised per channel (NCHW for images)."""
    rows = np.asarray(raw_rows)
    if rows.shape[1:] != dataset.input_shape:
        raise ValueError(f"{dataset.name}: rows of shape {rows.shape[1:]} given, samples are {dataset.input_shape}")
    features = torch.from_numpy(rows.astype(np.float32, copy=True))
    if dataset.feature_scale != 1.0:
        features.mul_(dataset.feature_scale)
    broadcast_shape = (1, len(dataset.channel_mean)) + (1,) * (rows.ndim - 2)
    mean = torch.tensor(dataset.channel_mean, dtype=torch.float32).reshape(broadcast_shape)
    std = torch.tensor(dataset.channel_std, dtype=torch.float32).reshape(broadcast_shape)
    return features.sub_(mean).div_(std)
