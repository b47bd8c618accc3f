"""The federated view of a prepared data set: which training rows each client owns, and the shared test set."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.datasets import femnist
from fedscale_halor.data.partition import filter_clients
from fedscale_halor.data.partition_cache import cached_partition
from fedscale_halor.data.store import PreparedDataset, open_dataset, to_model_input
from fedscale_halor.types import ClientData

logger = logging.getLogger(__name__)


def resolve_data_dir(data_dir: str, data_set: str, working_dir: Path) -> Path:
    """The job's data folder: ``data_dir`` (relative to ``working_dir``), or working_dir/data/<data_set> if empty."""
    if not data_dir:
        return working_dir / "data" / data_set
    path = Path(data_dir).expanduser()
    return path if path.is_absolute() else working_dir / path


def check_data_map_file(data_map_file: str, data_set: str, data_dir: Path, working_dir: Path) -> None:
    """Only FEMNIST reads a mapping file, and only the one in its data folder; anything else must not pass silently."""
    if not data_map_file:
        return
    if data_set != "femnist":
        logger.warning("data_map_file %s is ignored: %s takes its clients from its own files", data_map_file, data_set)
        return
    expected = data_dir / femnist.MAPPING_FOLDER / "train.csv"
    if resolve_data_dir(data_map_file, data_set, working_dir).resolve() != expected.resolve():
        raise ValueError(f"data_map_file {data_map_file}: femnist reads its client mapping from {expected}; "
                         f"leave data_map_file empty or point data_dir at the folder that holds this mapping")


def shard_bounds(num_samples: int, index: int, count: int) -> tuple[int, int]:
    """[start, end) of shard ``index`` of ``count`` contiguous shards that cover ``num_samples`` exactly once."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"test shard {index} of {count} does not exist: need count >= 1 and 0 <= index < count")
    return index * num_samples // count, (index + 1) * num_samples // count


class FederatedDataset:
    """Clients over a memory-mapped prepared data set; reading a client touches only that client's rows.

    Client ids are the partition's client numbers (0-based); clients without samples, or removed by
    filter_less / filter_more, are absent, so ``client_ids`` may have gaps.
    """

    def __init__(self, dataset: PreparedDataset, client_indices: Mapping[int, np.ndarray],
                 num_classes: int | None = None) -> None:
        self._dataset = dataset
        self._clients = {int(client): np.asarray(indices, dtype=np.int64)
                         for client, indices in sorted(client_indices.items())}
        # Labels are small next to the features and every statistic needs them, so they live in memory.
        self._train_labels = np.array(dataset.train_labels)
        self._num_classes = num_classes if num_classes else dataset.num_classes
        if self._num_classes < dataset.num_classes:
            raise ValueError(f"num_classes {self._num_classes} is smaller than the {dataset.num_classes} classes "
                             f"of {dataset.name}")

    @classmethod
    def from_job(cls, job: JobConfig, working_dir: Path | None = None) -> FederatedDataset:
        """Open (preparing on first use) and partition the job's data set; ``working_dir`` defaults to the cwd."""
        working_dir = working_dir or Path.cwd()
        data_dir = resolve_data_dir(job.data_dir, job.data_set, working_dir)
        check_data_map_file(job.data_map_file, job.data_set, data_dir, working_dir)
        dataset = open_dataset(job.data_set, data_dir)
        if job.num_classes and job.num_classes < dataset.num_classes:
            raise ValueError(f"num_classes {job.num_classes} is smaller than the {dataset.num_classes} classes of "
                             f"{job.data_set}; set it to 0 to take the data set's own")
        partitions = cached_partition(dataset, job.total_clients, job.partitioning, job.sample_seed,
                                      dirichlet_alpha=job.dirichlet_alpha, zipf_param=job.zipf_param)
        # A client without samples cannot train, whatever filter_less says.
        clients = filter_clients(partitions, max(job.filter_less, 1), job.filter_more)
        if not clients:
            raise ValueError(f"no client of {job.data_set} has between filter_less={job.filter_less} and "
                             f"filter_more={job.filter_more} samples")
        return cls(dataset, clients, job.num_classes or dataset.num_classes)

    @property
    def dataset(self) -> PreparedDataset:
        return self._dataset

    @property
    def client_ids(self) -> tuple[int, ...]:
        return tuple(self._clients)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._dataset.input_shape

    @property
    def num_test_samples(self) -> int:
        return self._dataset.num_test

    def client_indices(self, client_id: int) -> np.ndarray:
        """Rows of the training arrays that ``client_id`` owns, ascending."""
        try:
            return self._clients[client_id]
        except KeyError:
            raise KeyError(f"unknown client id {client_id} in {self._dataset.name} "
                           f"({len(self._clients)} clients)") from None

    def num_samples(self, client_id: int) -> int:
        return len(self.client_indices(client_id))

    def client_labels(self, client_id: int) -> np.ndarray:
        """The labels of the client's samples, in the order of ``client_indices``, without reading features."""
        return self._train_labels[self.client_indices(client_id)]

    def label_counts(self, client_id: int) -> np.ndarray:
        """How many samples of each class the client holds (length num_classes)."""
        return np.bincount(self.client_labels(client_id), minlength=self._num_classes)

    def client_data(self, client_id: int, positions: np.ndarray | None = None) -> ClientData:
        """The client's samples as model inputs; ``positions`` (into its local samples, repeats allowed) picks a
        subset, as a resampler does, so that only those rows are read."""
        rows = self.client_indices(client_id)
        if positions is not None:
            rows = rows[np.asarray(positions, dtype=np.int64)]
        return ClientData(
            client_id=client_id,
            features=to_model_input(self._dataset, self._dataset.train_features[rows]),
            labels=torch.from_numpy(self._train_labels[rows].astype(np.int64)),
        )

    def test_shard(self, index: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Shard ``index`` of ``count`` contiguous test shards, as (features, labels); the shards cover the test set
        exactly once."""
        start, end = shard_bounds(self.num_test_samples, index, count)
        features = to_model_input(self._dataset, self._dataset.test_features[start:end])
        labels = torch.from_numpy(np.array(self._dataset.test_labels[start:end], dtype=np.int64))
        return features, labels
