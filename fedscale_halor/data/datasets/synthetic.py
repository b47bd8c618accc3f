"""A generated data set of Gaussian class clusters, for tests and benchmarks.

Its shape is read from ``data_dir/synthetic.json`` when that file exists (keys: the fields of SyntheticSpec, for
example ``{"num_train": 50000, "input_shape": [3, 32, 32], "num_owners": 500}``); without it the defaults apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.data.datasets.base import RawDataset

SPEC_FILE = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """The recipe of a synthetic data set.

    Each class has a centre drawn from N(0, separation^2) per feature; samples are centre + N(0, 1) noise. Labels
    cycle through the classes, so class sizes differ by at most one; with ``class_zipf`` s > 0 the classes are
    long-tailed instead, class c holding a share proportional to (c + 1)^-s of the training and of the test set
    (largest remainders, so the counts are exact). ``num_owners`` > 0 also gives every training sample a random
    owner, so the real-client partition (scheme 0) can be exercised.
    """

    num_train: int = 2_000
    num_test: int = 500
    num_classes: int = 10
    input_shape: tuple[int, ...] = (1, 8, 8)
    separation: float = 1.0
    class_zipf: float = 0.0
    num_owners: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_train < 1 or self.num_test < 0:
            raise ValueError(f"synthetic: num_train must be >= 1 and num_test >= 0, got {self.num_train}, "
                             f"{self.num_test}")
        if self.num_classes < 1:
            raise ValueError(f"synthetic: num_classes must be >= 1, got {self.num_classes}")
        if not self.input_shape or any(size < 1 for size in self.input_shape):
            raise ValueError(f"synthetic: input_shape must be positive sizes, got {self.input_shape}")
        if not self.class_zipf >= 0.0:
            raise ValueError(f"synthetic: class_zipf must be >= 0, got {self.class_zipf}")
        if self.num_owners < 0:
            raise ValueError(f"synthetic: num_owners must be >= 0, got {self.num_owners}")


def read_spec(path: Path) -> SyntheticSpec:
    """The spec in a JSON file; unknown keys are errors that name the file and the key."""
    values: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of SyntheticSpec fields")
    known = {field.name for field in fields(SyntheticSpec)}
    for key in values:
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    if "input_shape" in values:
        values["input_shape"] = tuple(int(size) for size in values["input_shape"])
    return SyntheticSpec(**values)


def generate(spec: SyntheticSpec) -> RawDataset:
    """The data set ``spec`` describes; the same spec always gives the same arrays."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, spec.num_classes, spec.num_train]))
    num_features = int(np.prod(spec.input_shape))
    centres = rng.normal(0.0, spec.separation, size=(spec.num_classes, num_features)).astype(np.float32)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(class_sequence(count, spec.num_classes, spec.class_zipf))
        noise = rng.standard_normal(size=(count, num_features), dtype=np.float32)
        return (centres[labels] + noise).reshape(count, *spec.input_shape), labels

    train_features, train_labels = draw(spec.num_train)
    test_features, test_labels = draw(spec.num_test)
    owners = rng.integers(0, spec.num_owners, size=spec.num_train) if spec.num_owners else None
    return RawDataset(
        train_features=train_features,
        train_labels=train_labels,
        test_features=test_features,
        test_labels=test_labels,
        num_classes=spec.num_classes,
        class_names=tuple(f"class_{label}" for label in range(spec.num_classes)),
        train_owners=owners,
    )


def class_sequence(count: int, num_classes: int, class_zipf: float) -> np.ndarray:
    """``count`` labels, in class order: an even cycle, or Zipf(class_zipf) class sizes by largest remainders."""
    if class_zipf == 0.0:
        return np.arange(count, dtype=np.int64) % num_classes
    weights = np.arange(1, num_classes + 1, dtype=np.float64) ** -class_zipf
    quotas = count * weights / weights.sum()
    sizes = np.floor(quotas).astype(np.int64)
    # A stable sort keeps the lower class first among equal remainders.
    sizes[np.argsort(-(quotas - sizes), kind="stable")[: count - int(sizes.sum())]] += 1
    return np.repeat(np.arange(num_classes, dtype=np.int64), sizes)


def load(data_dir: Path) -> RawDataset:
    spec_path = data_dir / SPEC_FILE
    return generate(read_spec(spec_path) if spec_path.is_file() else SyntheticSpec())
