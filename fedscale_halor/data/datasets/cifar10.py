"""CIFAR-10 in torchvision's on-disk format: the ``cifar-10-batches-py`` folder of pickled batches.

The batches are local files the user downloaded, so reading them with pickle is acceptable; still, the unpickler
only admits the few NumPy names a batch can contain, so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset

NAME = "cifar10"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
IMAGE_SHAPE = (3, 32, 32)
DEFAULT_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# What pickled NumPy arrays need: array reconstruction under NumPy 1 and 2 module names, and the bytes encoder that
# protocol-2 pickles written by Python 3 use.
_ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}, which a batch never contains")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict[bytes, Any]:
    """One pickled batch as a dict with bytes keys (the files were written by Python 2)."""
    with path.open("rb") as stream:
        content = _BatchUnpickler(stream, encoding="bytes").load()
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return content


def batches_folder(data_dir: Path) -> Path:
    """The folder holding the batches: ``data_dir/cifar-10-batches-py`` or ``data_dir`` itself."""
    nested = data_dir / FOLDER
    if nested.is_dir() or not (data_dir / TRAIN_BATCHES[0]).exists():
        return nested
    return data_dir


def _images_and_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise MissingRawFileError(NAME, path)
    batch = read_batch(path)
    try:
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as missing:
        raise ValueError(f"{path}: batch has no key {missing.args[0]!r}") from None
    # Each row is 1024 red, then 1024 green, then 1024 blue values: already channels first.
    return pixels.reshape(-1, *IMAGE_SHAPE), labels


def _class_names(folder: Path) -> tuple[str, ...]:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return DEFAULT_CLASS_NAMES
    names = read_batch(meta_path).get(b"label_names")
    if not names:
        return DEFAULT_CLASS_NAMES
    return tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)


def load(data_dir: Path) -> RawDataset:
    folder = batches_folder(data_dir)
    train = [_images_and_labels(folder / batch) for batch in TRAIN_BATCHES]
    test_images, test_labels = _images_and_labels(folder / TEST_BATCH)
    return RawDataset(
        train_features=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_features=test_images,
        test_labels=test_labels,
        num_classes=10,
        class_names=_class_names(folder),
        feature_scale=1.0 / 255.0,
    )
