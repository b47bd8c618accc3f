"""What every data set loader returns, and the error for raw files that are not there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

README_HINT = "see dataset/README.md for where to download it and how to lay it out"


class MissingRawFileError(FileNotFoundError):
    """A raw file a data set needs is absent; the message names it and points to the download instructions."""

    def __init__(self, dataset: str, path: Path, what: str = "raw file") -> None:
        self.dataset = dataset
        self.path = path
        super().__init__(f"{dataset}: missing {what} {path}; {README_HINT}")


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A data set read from its source format, in memory, before it is written as prepared arrays.

    Features are channels first per sample (N, C, ...) in their compact source dtype; ``feature_scale`` turns them
    into the model's value range (1/255 for uint8 pixels). ``train_owners`` holds, for data sets with real clients,
    the client (0..K-1) that owns each training sample.
    """

    train_features: np.ndarray
    train_labels: np.ndarray
    test_features: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    feature_scale: float = 1.0
    train_owners: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.train_features) != len(self.train_labels):
            raise ValueError(f"{len(self.train_features)} training samples but {len(self.train_labels)} labels")
        if len(self.test_features) != len(self.test_labels):
            raise ValueError(f"{len(self.test_features)} test samples but {len(self.test_labels)} labels")
        if self.train_features.shape[1:] != self.test_features.shape[1:]:
            raise ValueError(f"train samples have shape {self.train_features.shape[1:]}, "
                             f"test samples {self.test_features.shape[1:]}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        for split, labels in (("train", self.train_labels), ("test", self.test_labels)):
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"{split} labels must lie in [0, {self.num_classes}), found "
                                 f"[{labels.min()}, {labels.max()}]")
        if self.train_owners is not None and len(self.train_owners) != len(self.train_labels):
            raise ValueError(f"{len(self.train_owners)} owners for {len(self.train_labels)} training samples")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(size) for size in self.train_features.shape[1:])


def dense_ids(keys: list[str]) -> tuple[np.ndarray, list[str]]:
    """Map string keys to ids 0..K-1 in order of first appearance (FedScale numbers mapping-file clients so)."""
    ids: dict[str, int] = {}
    dense = np.fromiter((ids.setdefault(key, len(ids)) for key in keys), dtype=np.int64, count=len(keys))
    return dense, list(ids)
