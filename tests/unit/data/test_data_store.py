from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from fedscale_halor.data.store import PreparedDataset, load_prepared, open_dataset, to_model_input


def hand_made_dataset(scale: float, mean: tuple[float, ...], std: tuple[float, ...],
                      input_shape: tuple[int, ...]) -> PreparedDataset:
    empty = np.zeros((0, *input_shape), dtype=np.uint8)
    return PreparedDataset(
        name="hand_made", train_features=empty, train_labels=np.zeros(0, dtype=np.int64), test_features=empty,
        test_labels=np.zeros(0, dtype=np.int64), num_classes=2, input_shape=input_shape, train_owners=None,
        class_names=("a", "b"), feature_scale=scale, channel_mean=mean, channel_std=std, prepared_dir=Path("."),
    )


def test_to_model_input_scales_then_normalises_each_channel() -> None:
    dataset = hand_made_dataset(scale=0.5, mean=(1.0, 2.0), std=(2.0, 4.0), input_shape=(2, 1, 2))
    rows = np.array([[[[6, 2]], [[20, 4]]]], dtype=np.uint8)

    model_input = to_model_input(dataset, rows)

    # channel 0: (6 * 0.5 - 1) / 2 = 1, (2 * 0.5 - 1) / 2 = 0; channel 1: (20 * 0.5 - 2) / 4 = 2, (4 * 0.5 - 2) / 4 = 0.
    assert model_input.dtype == torch.float32
    assert model_input.shape == (1, 2, 1, 2)
    assert model_input.tolist() == [[[[1.0, 0.0]], [[2.0, 0.0]]]]


def test_to_model_input_rejects_rows_of_another_shape() -> None:
    dataset = hand_made_dataset(scale=1.0, mean=(0.0,), std=(1.0,), input_shape=(1, 8, 8))

    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        to_model_input(dataset, np.zeros((3, 1, 4, 4), dtype=np.uint8))


def test_open_dataset_prepares_once_and_memory_maps(tmp_path: Path) -> None:
    dataset = open_dataset("digits", tmp_path)

    assert isinstance(dataset.train_features, np.memmap)
    assert isinstance(dataset.test_labels, np.memmap)
    assert dataset.train_features.dtype == np.uint8
    assert dataset.input_shape == (1, 8, 8) and dataset.num_classes == 10
    assert dataset.num_train == 1437 and dataset.num_test == 360
    assert dataset.train_owners is None
    assert dataset.prepared_dir == tmp_path / "prepared"


def test_normalised_training_features_have_zero_mean_and_unit_spread(synthetic_dir: Callable[..., Path]) -> None:
    dataset = open_dataset("synthetic", synthetic_dir(num_train=400, input_shape=[3, 4, 4], separation=3.0))

    model_input = to_model_input(dataset, dataset.train_features[:])

    per_channel = model_input.transpose(0, 1).reshape(3, -1)
    assert per_channel.mean(dim=1).abs().max().item() < 1e-4
    assert (per_channel.std(dim=1) - 1).abs().max().item() < 1e-2


def test_load_prepared_of_an_unprepared_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        load_prepared(tmp_path)


def test_owners_are_opened_for_data_sets_with_real_clients(synthetic_dir: Callable[..., Path]) -> None:
    dataset = open_dataset("synthetic", synthetic_dir(num_train=40, num_owners=5))

    assert dataset.train_owners is not None
    assert len(dataset.train_owners) == 40 and int(dataset.train_owners.max()) <= 4
