"""scikit-learn's bundled 8x8 digits: the default data set, needing no download.

The train/test split is stratified 80/20 with a seed fixed here, so "the digits test set" means the same 360 images
in every run and on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedscale_halor.data.datasets.base import RawDataset

SPLIT_SEED = 20_231_117
TEST_FRACTION = 0.2
# load_digits pixels are counts of set bits in 4x4 blocks: integers 0..16.
MAX_PIXEL_VALUE = 16


def load(data_dir: Path) -> RawDataset:
    """Read the bundled digits (``data_dir`` is unused: the data ship with scikit-learn)."""
    del data_dir
    # imported here: executors read prepared arrays and should not pay for scikit-learn's import
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.asarray(bunch.images).round().astype(np.uint8)[:, np.newaxis, :, :]
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_rows, test_rows = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    # Sorted rows keep the prepared arrays in the source's order, which makes them easy to inspect.
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)
    return RawDataset(
        train_features=images[train_rows],
        train_labels=labels[train_rows],
        test_features=images[test_rows],
        test_labels=labels[test_rows],
        num_classes=10,
        class_names=tuple(str(digit) for digit in range(10)),
        feature_scale=1.0 / MAX_PIXEL_VALUE,
    )
