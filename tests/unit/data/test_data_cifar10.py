from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_format_writers import cifar_image, write_cifar

from fedscale_halor.data.datasets import cifar10
from fedscale_halor.data.datasets.base import MissingRawFileError


def test_loads_the_batches_channels_first_in_file_order(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", images_per_batch=2, test_images=3)

    raw = cifar10.load(tmp_path)

    assert raw.train_features.shape == (10, 3, 32, 32)
    assert raw.train_features.dtype == np.uint8
    assert raw.test_features.shape == (3, 3, 32, 32)
    # Image i has planes 3i, 3i+1, 3i+2: red must land in channel 0.
    assert np.array_equal(raw.train_features[4], cifar_image(4))
    assert raw.train_features[9, 2, 0, 0] == 3 * 9 + 2
    assert raw.train_labels.tolist() == [index % 10 for index in range(10)]
    assert raw.test_labels.tolist() == [10 % 10, 11 % 10, 12 % 10]
    assert raw.class_names[:2] == ("plane", "car")
    assert raw.num_classes == 10 and raw.feature_scale == pytest.approx(1 / 255)


def test_accepts_data_dir_being_the_batches_folder_itself(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "batches", images_per_batch=1, test_images=1)

    raw = cifar10.load(folder)

    assert len(raw.train_labels) == 5


def test_missing_test_batch_names_the_file(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "cifar-10-batches-py", images_per_batch=1, test_images=1)
    (folder / "test_batch").unlink()

    with pytest.raises(MissingRawFileError, match="test_batch") as caught:
        cifar10.load(tmp_path)

    assert "dataset/README.md" in str(caught.value)


class _RunsACommand:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("echo should-never-run",)


def test_a_batch_that_would_run_code_is_refused(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "cifar-10-batches-py", images_per_batch=1, test_images=1)
    with (folder / "data_batch_3").open("wb") as stream:
        pickle.dump({b"data": _RunsACommand(), b"labels": [0]}, stream, protocol=2)

    with pytest.raises(pickle.UnpicklingError, match="system"):
        cifar10.load(tmp_path)
