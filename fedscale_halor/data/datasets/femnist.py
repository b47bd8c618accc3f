"""FEMNIST in FedScale's layout: a client_data_mapping folder of CSVs and a tree of grey character images.

``data_dir/client_data_mapping/{train,test}.csv`` have the columns ``client_id, sample_path, label_name, label_id``.
FedScale opens each image at ``data_dir/<sample_path>`` and its sample paths start with ``data/`` (for example
``data/raw_data/by_write/hsf_0/f0388_26/u0388_26/u0388_26_00004.png``); paths written relative to ``data_dir/data``
are accepted too. Clients are the writers of train.csv, numbered 0..K-1 in order of first appearance, as FedScale
numbers them.

Every row of a mapping is checked as it is read; a bad one is named by its file and line (the header is line 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset, dense_ids
from fedscale_halor.errors import InputFileError

if TYPE_CHECKING:  # pandas and Pillow are imported where used: executors only read prepared arrays
    import pandas as pd

NAME = "femnist"
MAPPING_FOLDER = "client_data_mapping"
IMAGE_FOLDER = "data"
COLUMNS = ("client_id", "sample_path", "label_name", "label_id")
REQUIRED_COLUMNS = ("client_id", "sample_path", "label_id")
NUM_CLASSES = 62
IMAGE_SIDE = 28
# LEAF's label order: digits, then upper case, then lower case letters.
CLASS_NAMES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
ROW_REMEDY = "fix or remove that row, or download the mapping files again (see dataset/README.md)"
FILE_REMEDY = "download the mapping files again (see dataset/README.md)"
IMAGE_REMEDY = "download the images again, or remove that row (see dataset/README.md)"


@dataclass(frozen=True)
class MappingRows:
    """The rows of one mapping CSV, column by column; ``lines`` holds each row's line in the file."""

    path: Path
    client_ids: tuple[str, ...]
    sample_paths: tuple[str, ...]
    label_names: tuple[str, ...]  # "" where the file has no label_name column
    label_ids: np.ndarray
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.lines)


def _table(path: Path) -> pd.DataFrame:
    """Every cell as a string; a row with more fields than the header is refused by pandas with its line."""
    import pandas as pd

    try:
        # skip_blank_lines=False keeps a data row's line number at its index + 2
        # header=None: the header line fixes the field count, so pandas refuses any longer row by its line
        # instead of taking an extra first field as an index
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                            encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise InputFileError(path, f"empty: expected a header line {','.join(COLUMNS)}", FILE_REMEDY) from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().removeprefix("Error tokenizing data. C error: ")
        raise InputFileError(path, f"not a readable CSV file ({detail})", ROW_REMEDY) from None
    except UnicodeDecodeError as error:
        raise InputFileError(path, f"not a readable CSV file ({error})", FILE_REMEDY) from None
    table.columns = [str(column).strip() for column in table.iloc[0]]
    table = table.iloc[1:].reset_index(drop=True)
    for column in REQUIRED_COLUMNS:
        if column not in table.columns:
            raise InputFileError(path, f"line 1: the header has no column {column!r} (expected "
                                       f"{', '.join(COLUMNS)})", FILE_REMEDY)
    table = table.apply(lambda cells: cells.str.strip())
    table["line"] = np.arange(len(table)) + 2
    return table[(table[list(table.columns[:-1])] != "").any(axis=1)]  # blank lines, as pandas would skip them


def _check_labels(path: Path, table: pd.DataFrame) -> np.ndarray:
    import pandas as pd

    labels = pd.to_numeric(table["label_id"], errors="coerce")
    integral = labels.notna() & (labels == labels.round())
    bad = np.flatnonzero(~integral.to_numpy())
    if len(bad):
        line, text = table["line"].iloc[bad[0]], table["label_id"].iloc[bad[0]]
        raise InputFileError(path, f"line {line}: label_id {text!r} is not an integer in [0, {NUM_CLASSES})",
                             ROW_REMEDY)
    outside = np.flatnonzero(((labels < 0) | (labels >= NUM_CLASSES)).to_numpy())
    if len(outside):
        line, label = table["line"].iloc[outside[0]], int(labels.iloc[outside[0]])
        raise InputFileError(path, f"line {line}: label_id {label} is outside [0, {NUM_CLASSES}) for the "
                                   f"{NUM_CLASSES} FEMNIST classes", ROW_REMEDY)
    return labels.to_numpy(dtype=np.int64)


def read_mapping(path: Path) -> MappingRows:
    """The mapping CSV, every row checked; client ids and paths stay strings."""
    if not path.is_file():
        raise MissingRawFileError(NAME, path, what="client mapping file")
    table = _table(path)
    for column in ("client_id", "sample_path"):
        empty = np.flatnonzero((table[column] == "").to_numpy())
        if len(empty):
            raise InputFileError(path, f"line {table['line'].iloc[empty[0]]}: empty {column}", ROW_REMEDY)
    labels = _check_labels(path, table)
    names = table["label_name"].tolist() if "label_name" in table.columns else [""] * len(table)
    return MappingRows(path, tuple(table["client_id"].tolist()), tuple(table["sample_path"].tolist()), tuple(names),
                       labels, tuple(int(line) for line in table["line"]))


def image_root(data_dir: Path, mapping: MappingRows) -> Path:
    """The folder sample paths are relative to, decided on the first sample: data_dir (FedScale) or data_dir/data."""
    first = mapping.sample_paths[0]
    for root in (data_dir, data_dir / IMAGE_FOLDER):
        if (root / first).is_file():
            return root
    raise InputFileError(mapping.path, f"line {mapping.lines[0]}: sample_path {first!r} is an image neither under "
                                       f"{data_dir} nor under {data_dir / IMAGE_FOLDER}", IMAGE_REMEDY)


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


def read_images(root: Path, mapping: MappingRows) -> np.ndarray:
    images = np.empty((len(mapping), 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    for row, (sample_path, line) in enumerate(zip(mapping.sample_paths, mapping.lines, strict=True)):
        path = root / sample_path
        if not path.is_file():
            raise InputFileError(mapping.path, f"line {line}: sample_path {sample_path!r}: no image at {path}",
                                 IMAGE_REMEDY)
        try:
            images[row, 0] = read_image(path)
        except OSError as error:  # Pillow's UnidentifiedImageError and truncated files are OSErrors
            raise InputFileError(path, f"not a readable image ({error}); it is listed at line {line} of "
                                       f"{mapping.path}", IMAGE_REMEDY) from None
    return images


def _class_names(mappings: list[MappingRows]) -> tuple[str, ...]:
    names = list(CLASS_NAMES)
    seen: set[int] = set()
    for mapping in mappings:
        for label, name in zip(mapping.label_ids.tolist(), mapping.label_names, strict=True):
            if label not in seen:
                seen.add(label)
                if name:
                    names[label] = name
    return tuple(names)


def load(data_dir: Path) -> RawDataset:
    mapping_folder = data_dir / MAPPING_FOLDER
    train = read_mapping(mapping_folder / "train.csv")
    test = read_mapping(mapping_folder / "test.csv")
    if not len(train):
        raise InputFileError(train.path, "no samples: only a header line", FILE_REMEDY)
    root = image_root(data_dir, train)
    owners, _ = dense_ids(list(train.client_ids))
    return RawDataset(
        train_features=read_images(root, train),
        train_labels=train.label_ids,
        test_features=read_images(root, test),
        test_labels=test.label_ids,
        num_classes=NUM_CLASSES,
        class_names=_class_names([train, test]),
        feature_scale=1.0 / 255.0,
        train_owners=owners,
    )
