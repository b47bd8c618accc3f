"""FEMNIST in FedScale's layout: a client_data_mapping folder of CSVs and a tree of grey character images.

``data_dir/client_data_mapping/{train,test}.csv`` have the columns ``client_id, sample_path, label_name, label_id``.
FedScale opens each image at ``data_dir/<sample_path>`` and its sample paths start with ``data/`` (for example
``data/raw_data/by_write/hsf_0/f0388_26/u0388_26/u0388_26_00004.png``); paths written relative to ``data_dir/data``
are accepted too. Clients are the writers of train.csv, numbered 0..K-1 in order of first appearance, as FedScale
numbers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset, dense_ids

if TYPE_CHECKING:  # pandas and Pillow are imported where used: executors only read prepared arrays
    import pandas as pd

NAME = "femnist"
MAPPING_FOLDER = "client_data_mapping"
IMAGE_FOLDER = "data"
REQUIRED_COLUMNS = ("client_id", "sample_path", "label_id")
NUM_CLASSES = 62
IMAGE_SIDE = 28
# LEAF's label order: digits, then upper case, then lower case letters.
CLASS_NAMES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def read_mapping(path: Path) -> pd.DataFrame:
    """The mapping CSV with its columns checked; client ids and paths stay strings."""
    if not path.is_file():
        raise MissingRawFileError(NAME, path, what="client mapping file")
    import pandas as pd

    table = pd.read_csv(path, dtype={"client_id": str, "sample_path": str, "label_name": str})
    table.columns = [str(column).strip() for column in table.columns]
    for column in REQUIRED_COLUMNS:
        if column not in table.columns:
            raise ValueError(f"{path}: missing column {column!r} (expected client_id, sample_path, label_name, "
                             f"label_id)")
    labels = pd.to_numeric(table["label_id"], errors="coerce")
    bad_rows = np.flatnonzero(labels.isna().to_numpy() | (labels < 0).to_numpy() | (labels >= NUM_CLASSES).to_numpy())
    if len(bad_rows):
        raise ValueError(f"{path}: label_id of data row {bad_rows[0] + 1} is {table['label_id'].iloc[bad_rows[0]]!s}, "
                         f"expected an integer in [0, {NUM_CLASSES})")
    table["label_id"] = labels.astype(np.int64)
    return table


def image_root(data_dir: Path, first_sample_path: str) -> Path:
    """The folder sample paths are relative to, decided on the first sample: data_dir (FedScale) or data_dir/data."""
    for root in (data_dir, data_dir / IMAGE_FOLDER):
        if (root / first_sample_path).is_file():
            return root
    raise MissingRawFileError(NAME, data_dir / first_sample_path, what="image")


def read_image(path: Path) -> np.ndarray:
    """One image as a 28x28 uint8 grey array (larger NIST scans are resized)."""
    if not path.is_file():
        raise MissingRawFileError(NAME, path, what="image")
    from PIL import Image

    with Image.open(path) as image:
        grey = image.convert("L")
        if grey.size != (IMAGE_SIDE, IMAGE_SIDE):
            grey = grey.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
        return np.asarray(grey, dtype=np.uint8)


def read_images(root: Path, sample_paths: list[str]) -> np.ndarray:
    images = np.empty((len(sample_paths), 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    for row, sample_path in enumerate(sample_paths):
        images[row, 0] = read_image(root / sample_path)
    return images


def _class_names(tables: list[pd.DataFrame]) -> tuple[str, ...]:
    names = list(CLASS_NAMES)
    for table in tables:
        if "label_name" not in table.columns:
            continue
        for label, name in table[["label_id", "label_name"]].drop_duplicates("label_id").itertuples(index=False):
            if isinstance(name, str) and name:
                names[int(label)] = name
    return tuple(names)


def load(data_dir: Path) -> RawDataset:
    mapping_folder = data_dir / MAPPING_FOLDER
    train = read_mapping(mapping_folder / "train.csv")
    test = read_mapping(mapping_folder / "test.csv")
    if train.empty:
        raise ValueError(f"{mapping_folder / 'train.csv'}: no samples")
    root = image_root(data_dir, str(train["sample_path"].iloc[0]))
    owners, _ = dense_ids(train["client_id"].tolist())
    return RawDataset(
        train_features=read_images(root, train["sample_path"].tolist()),
        train_labels=train["label_id"].to_numpy(dtype=np.int64),
        test_features=read_images(root, test["sample_path"].tolist()),
        test_labels=test["label_id"].to_numpy(dtype=np.int64),
        num_classes=NUM_CLASSES,
        class_names=_class_names([train, test]),
        feature_scale=1.0 / 255.0,
        train_owners=owners,
    )
