from __future__ import annotations

import json
import multiprocessing
import os
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.data import prepare
from fedscale_halor.data.datasets import registry
from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset
from fedscale_halor.data.prepare import (
    FORMAT_VERSION,
    META_FILE,
    channel_statistics,
    prepare_dataset,
    publish,
    read_meta,
    remove_abandoned_staging,
    write_prepared,
)
from fedscale_halor.errors import InputFileError


def tiny_raw(with_owners: bool = False) -> RawDataset:
    return RawDataset(
        train_features=np.arange(24, dtype=np.uint8).reshape(3, 2, 2, 2),
        train_labels=np.array([0, 1, 1]),
        test_features=np.zeros((1, 2, 2, 2), dtype=np.uint8),
        test_labels=np.array([1]),
        num_classes=2,
        class_names=("zero", "one"),
        feature_scale=0.5,
        train_owners=np.array([1, 0, 1]) if with_owners else None,
    )


class CountingLoader:
    """A loader that records how often it runs."""

    def __init__(self, raw: RawDataset) -> None:
        self.raw = raw
        self.calls = 0

    def __call__(self, data_dir: Path) -> RawDataset:
        self.calls += 1
        return self.raw


class FailingLoader:
    def __call__(self, data_dir: Path) -> RawDataset:
        raise RuntimeError("interrupted while reading raw files")


def siblings(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.parent.iterdir())


def test_channel_statistics_by_hand() -> None:
    # Channel 0 holds 0, 2, 4, 6 -> scaled 0, 1, 2, 3: mean 1.5, variance 1.25. Channel 1 is constant.
    features = np.array([[[0, 2], [8, 8]], [[4, 6], [8, 8]]], dtype=np.uint8)

    mean, std = channel_statistics(features, scale=0.5)

    assert mean == pytest.approx((1.5, 4.0))
    assert std == pytest.approx((1.25 ** 0.5, 1.0))


def test_writes_arrays_and_meta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.LOADERS, "synthetic", CountingLoader(tiny_raw(with_owners=True)))

    prepared = prepare_dataset("synthetic", tmp_path / "raw")

    assert prepared == tmp_path / "raw" / "prepared"
    meta = json.loads((prepared / META_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["num_classes"] == 2 and meta["input_shape"] == [2, 2, 2]
    assert meta["class_names"] == ["zero", "one"] and meta["num_owners"] == 2
    assert np.load(prepared / "train_x.npy").dtype == np.uint8
    assert np.load(prepared / "train_owner.npy").tolist() == [1, 0, 1]
    assert np.load(prepared / "test_y.npy").tolist() == [1]


def test_second_call_returns_at_once_and_force_prepares_again(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    loader = CountingLoader(tiny_raw())
    monkeypatch.setitem(registry.LOADERS, "synthetic", loader)
    first = prepare_dataset("synthetic", tmp_path, tmp_path / "out")
    meta_written = (first / META_FILE).stat().st_mtime_ns

    second = prepare_dataset("synthetic", tmp_path, tmp_path / "out")

    assert second == first and loader.calls == 1
    assert (first / META_FILE).stat().st_mtime_ns == meta_written
    prepare_dataset("synthetic", tmp_path, tmp_path / "out", force=True)
    assert loader.calls == 2
    assert siblings(first) == ["out"]


def test_missing_raw_file_names_it_and_points_to_the_readme(tmp_path: Path) -> None:
    with pytest.raises(MissingRawFileError) as caught:
        prepare_dataset("fashion_mnist", tmp_path)

    assert "train-images-idx3-ubyte" in str(caught.value)
    assert "dataset/README.md" in str(caught.value)
    assert not (tmp_path / "prepared").exists()


def test_unknown_data_set_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'mnist3d'"):
        prepare_dataset("mnist3d", tmp_path)


def test_interrupted_prepare_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.LOADERS, "synthetic", CountingLoader(tiny_raw()))

    def write_half_then_fail(raw: RawDataset, name: str, folder: Path) -> None:
        np.save(folder / "train_x.npy", raw.train_features)
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "write_prepared", write_half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("synthetic", tmp_path / "raw", tmp_path / "prepared")

    assert siblings(tmp_path / "raw") == []


def test_leftovers_of_a_killed_prepare_do_not_count_as_prepared(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    loader = CountingLoader(tiny_raw())
    monkeypatch.setitem(registry.LOADERS, "synthetic", loader)
    leftover = tmp_path / ".prepared.tmp-killed"
    leftover.mkdir()
    np.save(leftover / "train_x.npy", np.zeros(3))
    half_written = tmp_path / "prepared"
    half_written.mkdir()
    np.save(half_written / "train_x.npy", np.zeros(3))

    prepared = prepare_dataset("synthetic", tmp_path)

    assert loader.calls == 1
    assert read_meta(prepared) is not None


def test_abandoned_staging_folders_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "prepared"
    abandoned, set_aside, fresh = (tmp_path / ".prepared.tmp-old", tmp_path / ".prepared.old-x",
                                   tmp_path / ".prepared.tmp-live")
    for folder in (abandoned, set_aside, fresh):
        folder.mkdir()
    day_ago = time.time() - 24 * 3600
    for folder in (abandoned, set_aside):
        os.utime(folder, (day_ago, day_ago))

    removed = remove_abandoned_staging(target, older_than_s=3600)

    assert sorted(removed) == sorted([abandoned, set_aside])
    assert siblings(target) == [".prepared.tmp-live"]


def test_publish_keeps_a_complete_folder_another_process_placed(tmp_path: Path) -> None:
    winner, staging = tmp_path / "prepared", tmp_path / "staging"
    for folder in (winner, staging):
        folder.mkdir()
        write_prepared(tiny_raw(), "synthetic", folder)
    (winner / "marker").write_text("winner")

    won = publish(staging, winner, replace=False)

    assert not won
    assert (winner / "marker").read_text() == "winner"


def test_publish_replaces_an_outdated_folder(tmp_path: Path) -> None:
    outdated, staging = tmp_path / "prepared", tmp_path / "staging"
    outdated.mkdir()
    (outdated / META_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION - 1}))
    staging.mkdir()
    write_prepared(tiny_raw(), "synthetic", staging)

    won = publish(staging, outdated, replace=False)

    assert won and read_meta(outdated) is not None
    assert siblings(outdated) == ["prepared"]


def test_a_folder_of_another_data_set_is_refused(tmp_path: Path) -> None:
    prepare_dataset("digits", tmp_path, tmp_path / "shared")

    with pytest.raises(InputFileError) as raised:
        prepare_dataset("synthetic", tmp_path, tmp_path / "shared")

    assert str(raised.value) == (f"{tmp_path / 'shared'}: holds the prepared data set 'digits', not 'synthetic'; "
                                 "give 'synthetic' its own data_dir or prepared_dir")


class LoaderThatWaitsForItsRival:
    """Holds each process inside prepare until both are there, so both write and race to publish."""

    def __init__(self, barrier: Barrier) -> None:
        self.barrier = barrier

    def __call__(self, data_dir: Path) -> RawDataset:
        self.barrier.wait(timeout=20)
        return tiny_raw()


def _prepare_in_child(data_dir: Path, results: Queue) -> None:
    results.put(str(prepare_dataset("synthetic", data_dir)))


def test_processes_preparing_at_once_share_one_complete_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    context = multiprocessing.get_context("fork")
    monkeypatch.setitem(registry.LOADERS, "synthetic", LoaderThatWaitsForItsRival(context.Barrier(2)))
    results = context.Queue()
    children = [context.Process(target=_prepare_in_child, args=(tmp_path, results)) for _ in range(2)]

    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)

    assert [child.exitcode for child in children] == [0, 0]
    assert {results.get(timeout=5) for _ in children} == {str(tmp_path / "prepared")}
    assert read_meta(tmp_path / "prepared") is not None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["prepared"]
    assert np.load(tmp_path / "prepared" / "train_y.npy").tolist() == [0, 1, 1]
