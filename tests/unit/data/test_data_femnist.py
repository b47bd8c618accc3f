from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from data_format_writers import write_femnist

from fedscale_halor.data.datasets import femnist
from fedscale_halor.data.datasets.base import MissingRawFileError


@pytest.mark.parametrize("fedscale_paths", [True, False])
def test_loads_images_labels_and_writers(tmp_path: Path, fedscale_paths: bool) -> None:
    fixture = write_femnist(tmp_path / "femnist", fedscale_paths=fedscale_paths)

    raw = femnist.load(fixture.data_dir)

    assert raw.train_features.shape == (4, 1, 28, 28)
    assert raw.train_features.dtype == np.uint8
    assert raw.train_features[:, 0, 14, 14].tolist() == list(fixture.train_values)
    assert raw.train_labels.tolist() == list(fixture.train_labels)
    assert raw.test_features[:, 0, 0, 0].tolist() == list(fixture.test_values)
    assert raw.test_labels.tolist() == list(fixture.test_labels)
    assert raw.num_classes == 62


def test_writers_are_numbered_in_order_of_first_appearance(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")

    raw = femnist.load(fixture.data_dir)

    assert fixture.train_writers == ("writer_b", "writer_a", "writer_b", "writer_a")
    assert raw.train_owners is not None
    assert raw.train_owners.tolist() == [0, 1, 0, 1]


def test_class_names_come_from_the_label_name_column(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")

    raw = femnist.load(fixture.data_dir)

    assert raw.class_names[3] == "name3"
    assert raw.class_names[5] == "5"


def test_missing_image_is_named(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    victim = next((fixture.data_dir / "data").rglob("train_00002.png"))
    victim.unlink()

    with pytest.raises(MissingRawFileError, match=re.escape("train_00002.png")):
        femnist.load(fixture.data_dir)


def test_missing_mapping_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingRawFileError, match=re.escape("client_data_mapping/train.csv")):
        femnist.load(tmp_path)


def test_mapping_without_label_id_names_the_column(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    train_csv = fixture.data_dir / "client_data_mapping" / "train.csv"
    train_csv.write_text("client_id,sample_path,label_name\nw,data/a.png,x\n")

    with pytest.raises(ValueError, match="label_id"):
        femnist.load(fixture.data_dir)


def test_label_out_of_range_names_the_row(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    train_csv = fixture.data_dir / "client_data_mapping" / "train.csv"
    lines = train_csv.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",62"
    train_csv.write_text("\n".join(lines) + "\n")

    with pytest.raises(ValueError, match="row 2 is 62"):
        femnist.load(fixture.data_dir)
