from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from data_format_writers import write_femnist

from fedscale_halor.data.datasets import femnist
from fedscale_halor.data.datasets.base import MissingRawFileError
from fedscale_halor.errors import InputFileError


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


def test_missing_image_is_named_with_its_mapping_line(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    victim = next((fixture.data_dir / "data").rglob("train_00002.png"))
    victim.unlink()

    with pytest.raises(InputFileError) as raised:
        femnist.load(fixture.data_dir)

    sample = "data/raw_data/by_write/hsf_0/writer_b/train_00002.png"
    assert str(raised.value) == (f"{fixture.data_dir / 'client_data_mapping' / 'train.csv'}: line 4: sample_path "
                                 f"{sample!r}: no image at {victim}; {femnist.IMAGE_REMEDY}")


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

    with pytest.raises(InputFileError) as raised:
        femnist.load(fixture.data_dir)

    assert str(raised.value) == (f"{train_csv}: line 3: label_id 62 is outside [0, 62) for the 62 FEMNIST classes; "
                                 f"{femnist.ROW_REMEDY}")


@pytest.mark.parametrize(("content", "problem", "remedy"), [
    ("", "empty: expected a header line client_id,sample_path,label_name,label_id", femnist.FILE_REMEDY),
    ("client_id,sample_path,label_name,label_id\n", "no samples: only a header line", femnist.FILE_REMEDY),
    ("client,sample_path,label_id\nw,a.png,1\n",
     "line 1: the header has no column 'client_id' (expected client_id, sample_path, label_name, label_id)",
     femnist.FILE_REMEDY),
    ("client_id,sample_path,label_name,label_id\nw,a.png,x,1,2\n",
     "not a readable CSV file (Expected 4 fields in line 2, saw 5)", femnist.ROW_REMEDY),
    ("client_id,sample_path,label_name,label_id\nw,a.png,x\n", "line 2: label_id '' is not an integer in [0, 62)",
     femnist.ROW_REMEDY),
    ("client_id,sample_path,label_name,label_id\nw,a.png,x,1.5\n",
     "line 2: label_id '1.5' is not an integer in [0, 62)", femnist.ROW_REMEDY),
    ("client_id,sample_path,label_name,label_id\n\nw,a.png,x,seven\n",
     "line 3: label_id 'seven' is not an integer in [0, 62)", femnist.ROW_REMEDY),
    ("client_id,sample_path,label_name,label_id\n,a.png,x,1\n", "line 2: empty client_id", femnist.ROW_REMEDY),
    ("client_id,sample_path,label_name,label_id\nw,a.png,x,1\n",
     "line 2: sample_path 'a.png' is an image neither under {data_dir} nor under {data_dir}/data",
     femnist.IMAGE_REMEDY),
])
def test_a_bad_train_mapping_is_named_by_file_and_line(tmp_path: Path, content: str, problem: str,
                                                       remedy: str) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    train_csv = fixture.data_dir / "client_data_mapping" / "train.csv"
    train_csv.write_text(content)

    with pytest.raises(InputFileError) as raised:
        femnist.load(fixture.data_dir)

    assert str(raised.value) == f"{train_csv}: {problem.format(data_dir=fixture.data_dir)}; {remedy}"


def test_an_unreadable_image_is_named_with_the_line_that_lists_it(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    victim = next((fixture.data_dir / "data").rglob("test_00001.png"))
    victim.write_bytes(b"not a png")

    with pytest.raises(InputFileError) as raised:
        femnist.load(fixture.data_dir)

    test_csv = fixture.data_dir / "client_data_mapping" / "test.csv"
    assert str(raised.value) == (f"{victim}: not a readable image (cannot identify image file {str(victim)!r}); it is "
                                 f"listed at line 3 of {test_csv}; {femnist.IMAGE_REMEDY}")
