from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_format_writers import write_idx

from fedscale_halor.data.datasets import fashion_mnist
from fedscale_halor.data.datasets.base import MissingRawFileError
from fedscale_halor.data.datasets.fashion_mnist import parse_idx, read_idx


def numbered_images(count: int, offset: int = 0) -> np.ndarray:
    """Image i is filled with the value offset + i."""
    return np.stack([np.full((28, 28), offset + index, dtype=np.uint8) for index in range(count)])


def test_parse_idx_reads_big_endian_int32_by_hand() -> None:
    content = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big", signed=True) + (
        -2).to_bytes(4, "big", signed=True)

    values = parse_idx(content)

    assert values.tolist() == [1, -2]
    assert values.dtype == np.dtype("int32")


@pytest.mark.parametrize(("content", "message"), [
    (b"\x01\x00\x08\x01", "two zero bytes"),
    (bytes([0, 0, 0x07, 1]) + (1).to_bytes(4, "big") + b"\x00", "type code 0x07"),
    (bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + b"\x00\x00", "3 bytes"),
])
def test_parse_idx_rejects_malformed_content(content: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_idx(content, "sample.idx")


def test_read_idx_handles_gzip_and_plain_files(tmp_path: Path) -> None:
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    plain = write_idx(tmp_path / "values-idx3-ubyte", values)
    packed = write_idx(tmp_path / "values-idx3-ubyte.gz", values)

    assert np.array_equal(read_idx(plain), values)
    assert np.array_equal(read_idx(packed), values)


def test_loads_gz_train_files_and_plain_test_files(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", numbered_images(5))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([9, 0, 3, 3, 1], dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", numbered_images(2, offset=100))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([5, 7], dtype=np.uint8))

    raw = fashion_mnist.load(tmp_path)

    assert raw.train_features.shape == (5, 1, 28, 28)
    assert raw.train_features[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert raw.train_labels.tolist() == [9, 0, 3, 3, 1]
    assert raw.test_features[:, 0, 27, 27].tolist() == [100, 101]
    assert raw.test_labels.tolist() == [5, 7]
    assert raw.class_names[9] == "Ankle boot"


def test_finds_files_in_torchvisions_raw_folder(tmp_path: Path) -> None:
    raw_folder = tmp_path / "FashionMNIST" / "raw"
    raw_folder.mkdir(parents=True)
    for split, count in (("train", 3), ("t10k", 1)):
        write_idx(raw_folder / f"{split}-images-idx3-ubyte", numbered_images(count))
        write_idx(raw_folder / f"{split}-labels-idx1-ubyte", np.zeros(count, dtype=np.uint8))

    raw = fashion_mnist.load(tmp_path)

    assert len(raw.train_labels) == 3 and len(raw.test_labels) == 1


def test_images_and_labels_of_different_counts_are_an_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", numbered_images(3))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))

    with pytest.raises(ValueError, match=r"3 images but .* 2 labels"):
        fashion_mnist.load(tmp_path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(MissingRawFileError, match="train-images-idx3-ubyte"):
        fashion_mnist.load(tmp_path)
