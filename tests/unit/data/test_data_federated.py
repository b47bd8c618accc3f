from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from data_format_writers import write_femnist

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset, resolve_data_dir, shard_bounds
from fedscale_halor.data.store import PreparedDataset, to_model_input


def synthetic_job(tmp_path: Path, **overrides: object) -> JobConfig:
    """A job over a small synthetic data set in <tmp_path>/data/synthetic, found through data_dir = ""."""
    data_dir = tmp_path / "data" / "synthetic"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "synthetic.json").write_text(json.dumps(
        {"num_train": 240, "num_test": 50, "num_classes": 4, "input_shape": [1, 4, 4], "num_owners": 7}))
    values: dict[str, object] = {"data_set": "synthetic", "data_dir": "", "total_clients": 12, "partitioning": -1,
                                 "sample_seed": 5}
    return JobConfig(**{**values, **overrides})


class RowRecorder:
    """Stands in for a memory-mapped array and remembers which rows were read."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.rows_read: list[list[int]] = []

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        self.rows_read.append(np.asarray(rows).tolist())
        return self.values[rows]


def test_resolve_data_dir() -> None:
    assert resolve_data_dir("", "cifar10", Path("/work")) == Path("/work/data/cifar10")
    assert resolve_data_dir("raw/c10", "cifar10", Path("/work")) == Path("/work/raw/c10")
    assert resolve_data_dir("/data/c10", "cifar10", Path("/work")) == Path("/data/c10")


def test_shard_bounds_cover_every_sample_once() -> None:
    for count in (1, 3, 7, 12):
        bounds = [shard_bounds(10, index, count) for index in range(count)]
        covered = [sample for start, end in bounds for sample in range(start, end)]
        assert covered == list(range(10))
    with pytest.raises(ValueError, match="shard 3 of 3"):
        shard_bounds(10, 3, 3)


def test_from_job_prepares_under_the_working_dir_and_partitions(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path), working_dir=tmp_path)

    assert federated.client_ids == tuple(range(12))
    assert [federated.num_samples(client) for client in federated.client_ids] == [20] * 12
    assert federated.num_classes == 4 and federated.input_shape == (1, 4, 4)
    assert federated.num_test_samples == 50
    assert (tmp_path / "data" / "synthetic" / "prepared" / "meta.json").is_file()
    assert len(list((tmp_path / "data" / "synthetic" / "prepared" / "partitions").glob("*.npz"))) == 1


def test_clients_hold_disjoint_rows_and_matching_label_counts(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=8, dirichlet_alpha=0.3),
                                          working_dir=tmp_path)

    all_rows = np.concatenate([federated.client_indices(client) for client in federated.client_ids])
    assert len(all_rows) == len(np.unique(all_rows))
    for client in federated.client_ids:
        data = federated.client_data(client)
        assert len(data) == federated.num_samples(client)
        assert federated.label_counts(client).tolist() == np.bincount(data.labels.numpy(), minlength=4).tolist()


def test_client_data_reads_only_the_clients_rows(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path), working_dir=tmp_path)
    recorder = RowRecorder(np.asarray(federated.dataset.train_features))
    spied: PreparedDataset = dataclasses.replace(federated.dataset, train_features=recorder)
    spied_federated = FederatedDataset(spied, {client: federated.client_indices(client)
                                               for client in federated.client_ids})

    data = spied_federated.client_data(3)
    subset = spied_federated.client_data(3, positions=np.array([2, 0, 2]))

    rows = federated.client_indices(3)
    assert recorder.rows_read == [rows.tolist(), [rows[2], rows[0], rows[2]]]
    expected_features = to_model_input(federated.dataset, np.asarray(federated.dataset.train_features)[rows])
    assert torch.equal(data.features, expected_features)
    assert torch.equal(subset.labels, data.labels[[2, 0, 2]])
    assert data.client_id == 3 and data.labels.dtype == torch.int64


def test_test_shards_cover_the_test_set_exactly_once(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path), working_dir=tmp_path)
    whole_features, whole_labels = federated.test_shard(0, 1)

    shards = [federated.test_shard(index, 3) for index in range(3)]

    assert [len(labels) for _, labels in shards] == [16, 17, 17]
    assert torch.equal(torch.cat([labels for _, labels in shards]), whole_labels)
    assert torch.equal(torch.cat([features for features, _ in shards]), whole_features)
    assert np.array_equal(whole_labels.numpy(), np.asarray(federated.dataset.test_labels))


def test_unknown_client_is_a_key_error_naming_it(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path), working_dir=tmp_path)

    with pytest.raises(KeyError, match="unknown client id 12"):
        federated.client_data(12)


def test_filters_drop_clients_but_keep_ids(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=2, filter_less=5, filter_more=100),
                                          working_dir=tmp_path)

    sizes = {client: federated.num_samples(client) for client in federated.client_ids}
    assert all(5 <= size <= 100 for size in sizes.values())
    assert 0 not in sizes  # Zipf's first client holds about 60 % of 240 samples, more than 100
    assert max(sizes) > len(sizes) - 1  # ids are the original ones, so there are gaps


def test_real_mapping_clients_are_the_owners(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=0), working_dir=tmp_path)

    owners = np.asarray(federated.dataset.train_owners)
    assert federated.client_ids == tuple(int(owner) for owner in np.unique(owners))
    for client in federated.client_ids:
        assert np.array_equal(federated.client_indices(client), np.flatnonzero(owners == client))


def test_num_classes_larger_than_the_data_sets_widens_label_counts(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, num_classes=6), working_dir=tmp_path)

    assert federated.num_classes == 6
    assert len(federated.label_counts(0)) == 6 and federated.label_counts(0)[4:].tolist() == [0, 0]


def test_num_classes_smaller_than_the_data_sets_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes 3"):
        FederatedDataset.from_job(synthetic_job(tmp_path, num_classes=3), working_dir=tmp_path)


def test_femnist_mapping_file_outside_its_data_dir_is_an_error(tmp_path: Path) -> None:
    job = JobConfig(data_set="femnist", data_dir=str(tmp_path / "femnist"), data_map_file="/elsewhere/train.csv")

    with pytest.raises(ValueError, match=re.escape("data_map_file /elsewhere/train.csv")):
        FederatedDataset.from_job(job, working_dir=tmp_path)


def test_femnist_writers_become_clients_end_to_end(tmp_path: Path) -> None:
    fixture = write_femnist(tmp_path / "femnist")
    job = JobConfig(data_set="femnist", data_dir="femnist", partitioning=0,
                    data_map_file="femnist/client_data_mapping/train.csv")

    federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # writer_b owns training rows 0 and 2 (labels 3, 3), writer_a rows 1 and 3 (labels 11, 40).
    assert federated.client_ids == (0, 1)
    assert federated.client_indices(0).tolist() == [0, 2]
    assert np.flatnonzero(federated.label_counts(1)).tolist() == [11, 40]
    assert federated.client_data(0).features.shape == (2, 1, 28, 28)
    assert federated.test_shard(0, 1)[1].tolist() == list(fixture.test_labels)
