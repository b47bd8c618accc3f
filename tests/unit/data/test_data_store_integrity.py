"""Damaged prepared folders are refused when opened, each with a message naming the file and the fix."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.data import integrity
from fedscale_halor.data.integrity import VERIFIED_FILE, file_sha256
from fedscale_halor.data.store import load_prepared, open_dataset
from fedscale_halor.errors import InputFileError

# 20 training and 10 test samples of shape (1, 2, 2), float32: a training array holds 20 * 4 * 4 = 320 bytes of
# values after the 128 bytes of its .npy header.
SPEC = {"num_train": 20, "num_test": 10, "num_classes": 3, "input_shape": [1, 2, 2]}


@pytest.fixture
def data_dir(synthetic_dir: Callable[..., Path]) -> Path:
    folder = synthetic_dir(**SPEC)
    open_dataset("synthetic", folder)
    return folder


def remedy(data_dir: Path) -> str:
    return f"re-run `fedscale-halor prepare synthetic --data-dir {data_dir} --force`"


def refusal(data_dir: Path) -> str:
    with pytest.raises(InputFileError) as raised:
        open_dataset("synthetic", data_dir)
    return str(raised.value)


def test_prepare_records_the_sha256_of_every_array(data_dir: Path) -> None:
    # Execute
    meta = json.loads((data_dir / "prepared" / "meta.json").read_text())

    # Assert
    prepared = data_dir / "prepared"
    assert meta["sha256"] == {name: file_sha256(prepared / name)
                              for name in ("test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy")}


def test_a_truncated_array_gives_its_size_and_the_size_its_header_describes(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_x.npy"
    path.write_bytes(path.read_bytes()[:200])

    # Execute / Assert: 128 header bytes + 320 value bytes = 448
    assert refusal(data_dir) == (f"{path}: truncated: 200 bytes, but its header describes 448 (shape (20, 1, 2, 2), "
                                 f"float32); {remedy(data_dir)}")


def test_an_empty_array_file_is_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "test_y.npy"
    path.write_bytes(b"")

    # Execute / Assert
    assert refusal(data_dir) == f"{path}: empty (0 bytes); {remedy(data_dir)}"


def test_a_missing_array_file_is_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "test_x.npy"
    path.unlink()

    # Execute / Assert
    assert refusal(data_dir) == f"{path}: missing; {remedy(data_dir)}"


def test_a_file_that_is_not_npy_is_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_x.npy"
    path.write_text("label,pixel\n")

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: not a NumPy .npy file (it does not start with the .npy magic bytes); "
                                 f"{remedy(data_dir)}")


class _Payload:
    """Unpickling this would create a marker file: proof that the object array was never unpickled."""

    marker = ""

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.marker), "unpickled"))


def test_an_object_array_is_refused_without_being_unpickled(data_dir: Path, tmp_path: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_y.npy"
    _Payload.marker = str(tmp_path / "marker")
    np.save(path, np.array([_Payload()] * 20, dtype=object), allow_pickle=True)

    # Execute
    message = refusal(data_dir)

    # Assert
    assert message == (f"{path}: holds Python objects (dtype object), not numbers; it is refused unread; "
                       f"{remedy(data_dir)}")
    assert not (tmp_path / "marker").exists()


def test_an_array_of_another_dtype_is_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_y.npy"
    np.save(path, np.zeros(20, dtype=np.int32))

    # Execute / Assert
    assert refusal(data_dir) == f"{path}: holds int32 values, expected int64; {remedy(data_dir)}"


def test_an_array_of_another_shape_is_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "test_x.npy"
    np.save(path, np.zeros((10, 1, 4, 1), dtype=np.float32))

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: holds an array of shape (10, 1, 4, 1), expected (10, 1, 2, 2) "
                                 f"(from meta.json); {remedy(data_dir)}")


def test_extra_bytes_after_the_array_are_named(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_x.npy"
    path.write_bytes(path.read_bytes() + b"\0" * 8)

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: 456 bytes, 8 more than its header describes (shape (20, 1, 2, 2), "
                                 f"float32); {remedy(data_dir)}")


@pytest.mark.parametrize(("file_name", "row", "value"), [("train_y.npy", 3, 7), ("test_y.npy", 9, -1)])
def test_a_label_outside_the_classes_is_named_with_its_row(data_dir: Path, file_name: str, row: int,
                                                           value: int) -> None:
    # Prepare
    path = data_dir / "prepared" / file_name
    labels = np.load(path)
    labels[row] = value
    np.save(path, labels)

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: label {value} at row {row} is outside [0, 3) for 3 classes "
                                 f"(meta.json's num_classes); {remedy(data_dir)}")


def test_several_bad_labels_are_counted(data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "train_y.npy"
    labels = np.load(path)
    labels[[2, 5, 6]] = 3
    np.save(path, labels)

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: label 3 at row 2 is outside [0, 3) for 3 classes (meta.json's "
                                 f"num_classes) (3 labels in all); {remedy(data_dir)}")


def test_changed_contents_fail_the_checksum(data_dir: Path) -> None:
    # Prepare: the last value byte of the training features changes; size, shape and dtype stay right
    path = data_dir / "prepared" / "train_x.npy"
    content = bytearray(path.read_bytes())
    content[-1] ^= 0xFF
    path.write_bytes(bytes(content))
    recorded = json.loads((data_dir / "prepared" / "meta.json").read_text())["sha256"]["train_x.npy"]

    # Execute / Assert
    assert refusal(data_dir) == (f"{path}: its contents changed since prepare wrote it (sha256 "
                                 f"{file_sha256(path)[:16]}..., meta.json records {recorded[:16]}...); "
                                 f"{remedy(data_dir)}")


def test_arrays_are_hashed_once_and_again_only_when_a_file_changes(data_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the fixture's open has hashed and stamped every array
    hashed: list[str] = []

    def counting_sha256(path: Path) -> str:
        hashed.append(path.name)
        return file_sha256(path)

    monkeypatch.setattr(integrity, "file_sha256", counting_sha256)
    labels = data_dir / "prepared" / "train_y.npy"

    # Execute
    open_dataset("synthetic", data_dir)
    unchanged = list(hashed)
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
    open_dataset("synthetic", data_dir)

    # Assert
    assert unchanged == []
    assert hashed == ["train_y.npy"]
    assert (data_dir / "prepared" / VERIFIED_FILE).is_file()


def test_a_damaged_stamp_file_only_costs_a_hash(data_dir: Path) -> None:
    # Prepare
    (data_dir / "prepared" / VERIFIED_FILE).write_text("{")

    # Execute
    dataset = open_dataset("synthetic", data_dir)

    # Assert
    assert dataset.num_train == 20
    assert json.loads((data_dir / "prepared" / VERIFIED_FILE).read_text()).keys() == {
        "test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy"}


def test_a_folder_prepared_before_checksums_opens_with_a_warning(data_dir: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    meta_path = data_dir / "prepared" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["sha256"]
    meta_path.write_text(json.dumps(meta))

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.data.store"):
        dataset = open_dataset("synthetic", data_dir)

    # Assert
    assert dataset.num_train == 20
    assert caplog.messages == [f"{data_dir / 'prepared'}: meta.json records no checksums (prepared by an earlier "
                               f"version), so the arrays' contents are not verified; {remedy(data_dir)} to add them"]


def test_meta_json_that_is_not_json_is_named(data_dir: Path) -> None:
    # Prepare
    meta_path = data_dir / "prepared" / "meta.json"
    meta_path.write_text('{"format_version": 1, "name": "synth')

    # Execute / Assert
    assert refusal(data_dir) == (f"{meta_path}: not valid JSON (Unterminated string starting at: line 1 column 31 "
                                 f"(char 30)); {remedy(data_dir)}")


def test_meta_json_that_is_not_an_object_is_named(data_dir: Path) -> None:
    # Prepare
    meta_path = data_dir / "prepared" / "meta.json"
    meta_path.write_text("[1]")

    # Execute / Assert
    assert refusal(data_dir) == f"{meta_path}: expected a JSON object, found a JSON list; {remedy(data_dir)}"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("num_classes", None, "key 'num_classes' is missing (expected an integer >= 1)"),
    ("num_classes", "three", "key 'num_classes' is 'three', expected an integer >= 1"),
    ("num_train", -1, "key 'num_train' is -1, expected an integer >= 0"),
    ("input_shape", [1, 0, 2], "key 'input_shape' is [1, 0, 2], expected a list of positive integers"),
    ("channel_std", [0.0], "key 'channel_std' is [0.0], expected a list of 1 finite positive numbers"),
    ("feature_dtype", "object", "key 'feature_dtype' is 'object', expected a numeric NumPy dtype"),
    ("sha256", {"x.npy": "0"}, "key 'sha256' is {'x.npy': '0'}, expected a map from array file name to its "
                               "sha256 in hex"),
])
def test_a_bad_meta_json_field_is_named(data_dir: Path, key: str, value: object, expected: str) -> None:
    # Prepare
    meta_path = data_dir / "prepared" / "meta.json"
    meta = json.loads(meta_path.read_text())
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    meta_path.write_text(json.dumps(meta))

    # Execute / Assert
    assert refusal(data_dir) == f"{meta_path}: {expected}; {remedy(data_dir)}"


def test_a_missing_meta_json_means_an_unfinished_folder_which_is_prepared_again(data_dir: Path) -> None:
    # Prepare
    (data_dir / "prepared" / "meta.json").unlink()
    (data_dir / "prepared" / "train_x.npy").write_bytes(b"")

    # Execute
    dataset = open_dataset("synthetic", data_dir)

    # Assert
    assert dataset.num_train == 20 and dataset.train_features.shape == (20, 1, 2, 2)


def test_load_prepared_of_a_folder_outside_its_data_dir_names_both_folders_in_the_remedy(tmp_path: Path,
                                                                                         data_dir: Path) -> None:
    # Prepare
    path = data_dir / "prepared" / "test_y.npy"
    path.write_bytes(b"")

    # Execute
    with pytest.raises(InputFileError) as raised:
        load_prepared(data_dir / "prepared", "synthetic", tmp_path / "raw")

    # Assert
    assert str(raised.value) == (f"{path}: empty (0 bytes); re-run `fedscale-halor prepare synthetic --data-dir "
                                 f"{tmp_path / 'raw'} --prepared-dir {data_dir / 'prepared'} --force`")
