from __future__ import annotations

from pathlib import Path

import numpy as np

from fedscale_halor.data.datasets import digits


def test_digits_has_ten_classes_and_a_stratified_80_20_split(tmp_path: Path) -> None:
    raw = digits.load(tmp_path)

    # 1797 images; scikit-learn rounds the test size up: ceil(0.2 * 1797) = 360.
    assert raw.num_classes == 10
    assert raw.train_features.shape == (1437, 1, 8, 8)
    assert raw.test_features.shape == (360, 1, 8, 8)
    assert raw.train_features.dtype == np.uint8 and int(raw.train_features.max()) == 16
    class_totals = np.bincount(raw.train_labels, minlength=10) + np.bincount(raw.test_labels, minlength=10)
    test_counts = np.bincount(raw.test_labels, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * class_totals) <= 1)


def test_digits_split_is_the_same_every_time(tmp_path: Path) -> None:
    first = digits.load(tmp_path)
    second = digits.load(tmp_path / "elsewhere")

    assert np.array_equal(first.test_features, second.test_features)
    assert np.array_equal(first.test_labels, second.test_labels)
