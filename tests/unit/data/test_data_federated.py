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
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=9, dirichlet_alpha=0.3),
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
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=0, num_participants=7),
                                          working_dir=tmp_path)

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
    job = JobConfig(data_set="femnist", data_dir="femnist", partitioning=0, num_participants=2,
                    data_map_file="femnist/client_data_mapping/train.csv")

    federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # writer_b owns training rows 0 and 2 (labels 3, 3), writer_a rows 1 and 3 (labels 11, 40).
    assert federated.client_ids == (0, 1)
    assert federated.client_indices(0).tolist() == [0, 2]
    assert np.flatnonzero(federated.label_counts(1)).tolist() == [11, 40]
    assert federated.client_data(0).features.shape == (2, 1, 28, 28)
    assert federated.test_shard(0, 1)[1].tolist() == list(fixture.test_labels)


def test_total_clients_zero_makes_num_participants_generated_clients(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    job = synthetic_job(tmp_path, total_clients=0, num_participants=8)

    # Execute
    with caplog.at_level("INFO", logger="fedscale_halor.data.federated"):
        federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # Assert: 240 IID samples over 8 clients
    assert federated.num_partition_clients == 8
    assert [federated.num_samples(client) for client in federated.client_ids] == [30] * 8
    assert "total_clients 0: partitioning -1 (IID) makes num_participants = 8 clients" in caplog.text


def test_total_clients_zero_with_the_real_mapping_takes_every_owner(tmp_path: Path) -> None:
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, total_clients=0, partitioning=0,
                                                        num_participants=5), working_dir=tmp_path)

    assert federated.num_partition_clients == 7
    assert federated.client_ids == tuple(range(7))


def test_negative_used_samples_makes_clients_of_one_batch_plus_one(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: REFL's and Halor's rule, which overrides total_clients: 240 // (9 + 1) = 24 clients of 10 samples
    job = synthetic_job(tmp_path, partitioning=8, used_samples=-1, batch_size=9, dirichlet_alpha=1e6)

    # Execute
    with caplog.at_level("INFO", logger="fedscale_halor.data.federated"):
        federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # Assert: Halor's shares of about 1/4 give floor(10 / 4) = 2 samples of each of the 4 classes
    assert federated.num_partition_clients == 24
    assert all(federated.label_counts(client).tolist() == [2, 2, 2, 2] for client in federated.client_ids)
    assert "used_samples -1: 24 clients (len(train) 240 // (batch_size + 1)) instead of total_clients 12" in caplog.text


def test_halor_partition_label_counts_count_a_shared_sample_once_per_client(tmp_path: Path) -> None:
    # Prepare: 12 clients of floor(26 / 4) = 6 samples per class
    job = synthetic_job(tmp_path, partitioning=8, used_samples=26, dirichlet_alpha=1e6)

    # Execute
    federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # Assert: 12 * 6 = 72 per class
    assert federated.partition_label_counts.tolist() == [72, 72, 72, 72]


def test_partition_label_counts_include_the_clients_the_filters_drop(tmp_path: Path) -> None:
    # Prepare
    job = synthetic_job(tmp_path, partitioning=9, dirichlet_alpha=0.2, filter_less=15)

    # Execute
    federated = FederatedDataset.from_job(job, working_dir=tmp_path)

    # Assert: the label split uses every training sample once, kept clients or not
    kept = np.sum([federated.label_counts(client) for client in federated.client_ids], axis=0)
    everything = np.bincount(np.asarray(federated.dataset.train_labels), minlength=4)
    assert federated.num_partition_clients == 12 and len(federated.client_ids) < 12
    assert federated.partition_label_counts.tolist() == everything.tolist()
    assert kept.sum() < everything.sum()


def test_more_participants_than_real_clients_is_an_error_naming_both_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "num_participants 10 is more than the 7 clients of synthetic (its real client mapping, partitioning 0, "
            "where total_clients is not used); lower num_participants")):
        FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=0), working_dir=tmp_path)


def test_more_participants_than_used_samples_clients_is_an_error(tmp_path: Path) -> None:
    # 240 // (99 + 1) = 2 clients
    job = synthetic_job(tmp_path, used_samples=-1, batch_size=99, num_participants=3)

    with pytest.raises(ValueError, match=re.escape("num_participants 3 is more than the 2 clients of synthetic "
                                                   "(used_samples -1 makes len(train) // (batch_size + 1) of them)")):
        FederatedDataset.from_job(job, working_dir=tmp_path)


def test_class_filter_ratio_keeps_that_share_of_classes_per_client(tmp_path: Path) -> None:
    # round(4 * (1 - 0.5)) = 2 of the 4 classes removed per client
    federated = FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=9, filter_class_ratio=0.5),
                                          working_dir=tmp_path)

    assert all(np.count_nonzero(federated.label_counts(client)) <= 2 for client in federated.client_ids)


def test_class_filter_is_not_used_with_iid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="fedscale_halor.data.federated"):
        federated = FederatedDataset.from_job(synthetic_job(tmp_path, filter_class=3), working_dir=tmp_path)

    assert [federated.num_samples(client) for client in federated.client_ids] == [20] * 12
    assert "filter_class / filter_class_ratio are not used with partitioning -1" in caplog.text


def test_class_filter_removing_every_class_is_an_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^filter_class 4 removes 4 of the 4 classes"):
        FederatedDataset.from_job(synthetic_job(tmp_path, partitioning=9, filter_class=4), working_dir=tmp_path)
