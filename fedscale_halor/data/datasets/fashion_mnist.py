"""Fashion-MNIST from its idx files (gzip-compressed or not), parsed with NumPy.

The idx format: two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian uint32,
then the values in big-endian order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset

NAME = "fashion_mnist"
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
# torchvision's FashionMNIST keeps the files in <root>/FashionMNIST/raw.
SEARCH_FOLDERS = (Path("."), Path("FashionMNIST") / "raw", Path("raw"))

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(content: bytes, source: str = "idx data") -> np.ndarray:
    """Decode the bytes of an idx file into an array in native byte order; ``source`` names it in errors."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise ValueError(f"{source}: not an idx file (it must start with two zero bytes)")
    type_code, num_dims = content[2], content[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{source}: unknown idx type code 0x{type_code:02x}")
    header_size = 4 + 4 * num_dims
    if len(content) < header_size:
        raise ValueError(f"{source}: truncated idx header")
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=num_dims, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) - header_size != expected:
        raise ValueError(f"{source}: header promises {expected} bytes of values for shape {shape}, "
                         f"found {len(content) - header_size}")
    values = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file; a name ending in .gz is decompressed first."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        return parse_idx(stream.read(), str(path))


def find_idx_file(data_dir: Path, stem: str) -> Path:
    """The plain or gzip file named ``stem`` in data_dir or torchvision's sub-folder; error if neither exists."""
    for folder in SEARCH_FOLDERS:
        for name in (stem, f"{stem}.gz"):
            candidate = data_dir / folder / name
            if candidate.is_file():
                return candidate
    raise MissingRawFileError(NAME, data_dir / stem, what="raw file (plain or .gz)")


def _read_split(data_dir: Path, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = find_idx_file(data_dir, images_stem)
    labels_path = find_idx_file(data_dir, labels_stem)
    images = read_idx(images_path)
    labels = read_idx(labels_path).astype(np.int64)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected 3 dimensions (count, rows, columns), found {images.ndim}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
    return images.astype(np.uint8)[:, np.newaxis, :, :], labels


def load(data_dir: Path) -> RawDataset:
    train_images, train_labels = _read_split(data_dir, TRAIN_IMAGES, TRAIN_LABELS)
    test_images, test_labels = _read_split(data_dir, TEST_IMAGES, TEST_LABELS)
    return RawDataset(
        train_features=train_images,
        train_labels=train_labels,
        test_features=test_images,
        test_labels=test_labels,
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        feature_scale=1.0 / 255.0,
    )
