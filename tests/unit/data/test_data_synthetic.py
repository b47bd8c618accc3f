from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.data.datasets import synthetic
from fedscale_halor.data.datasets.synthetic import SyntheticSpec, generate, read_spec


def test_synthetic_follows_its_spec_and_seed() -> None:
    spec = SyntheticSpec(num_train=30, num_test=7, num_classes=3, input_shape=(2, 5), seed=4)

    first, again = generate(spec), generate(spec)
    other = generate(SyntheticSpec(num_train=30, num_test=7, num_classes=3, input_shape=(2, 5), seed=5))

    assert first.train_features.shape == (30, 2, 5) and first.test_features.shape == (7, 2, 5)
    assert np.bincount(first.train_labels).tolist() == [10, 10, 10]
    assert np.array_equal(first.train_features, again.train_features)
    assert not np.array_equal(first.train_features, other.train_features)
    assert first.train_owners is None


def test_synthetic_classes_are_separable_when_centres_are_far_apart() -> None:
    raw = generate(SyntheticSpec(num_train=300, num_test=0, num_classes=3, separation=10.0))
    flat = raw.train_features.reshape(len(raw.train_labels), -1)

    centres = np.stack([flat[raw.train_labels == label].mean(axis=0) for label in range(3)])
    nearest = np.argmin(((flat[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)

    assert np.mean(nearest == raw.train_labels) > 0.99


def test_synthetic_owners_when_asked() -> None:
    raw = generate(SyntheticSpec(num_train=50, num_owners=4))

    assert raw.train_owners is not None
    assert raw.train_owners.min() >= 0 and raw.train_owners.max() <= 3


def test_synthetic_spec_file_is_read_and_unknown_keys_named(tmp_path: Path) -> None:
    (tmp_path / "synthetic.json").write_text(json.dumps({"num_train": 12, "input_shape": [3, 2, 2]}))
    raw = synthetic.load(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"num_trian": 12}))

    assert raw.train_features.shape == (12, 3, 2, 2)
    with pytest.raises(ValueError, match="'num_trian'"):
        read_spec(bad)


def test_synthetic_long_tailed_classes_follow_zipf_by_largest_remainders() -> None:
    # weights 1, 1/2, 1/3 of 100 samples: quotas 54.55, 27.27, 18.18 -> 54, 27, 18 and the one left goes to class 0;
    # of 11 test samples the quotas are whole: 6, 3, 2
    raw = generate(SyntheticSpec(num_train=100, num_test=11, num_classes=3, class_zipf=1.0))

    assert np.bincount(raw.train_labels).tolist() == [55, 27, 18]
    assert np.bincount(raw.test_labels).tolist() == [6, 3, 2]


def test_synthetic_refuses_a_negative_class_zipf() -> None:
    with pytest.raises(ValueError, match="class_zipf"):
        SyntheticSpec(class_zipf=-1.0)
