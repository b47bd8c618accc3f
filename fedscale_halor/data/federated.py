"""The federated view of a prepared data set: which training rows each client owns, and the shared test set."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.datasets import femnist
from fedscale_halor.data.label_shares import removed_class_count, samples_per_client
from fedscale_halor.data.partition import (
    CLASS_FILTER_SCHEMES,
    HALOR_DIRICHLET,
    REAL_CLIENTS,
    SCHEME_NAMES,
    filter_clients,
)
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
        raise ConfigError(f"data_map_file {data_map_file}: femnist reads its client mapping from {expected}; "
                         f"leave data_map_file empty or point data_dir at the folder that holds this mapping")


def shard_bounds(num_samples: int, index: int, count: int) -> tuple[int, int]:
    """[start, end) of shard ``index`` of ``count`` contiguous shards that cover ``num_samples`` exactly once."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"test shard {index} of {count} does not exist: need count >= 1 and 0 <= index < count")
    return index * num_samples // count, (index + 1) * num_samples // count


@dataclass(frozen=True)
class PartitionPlan:
    """The partition settings of a job once the data set is known (what ``cached_partition`` takes)."""

    num_clients: int  # 0 under the real mapping, where the owners decide
    num_classes: int
    samples_per_client: int  # Halor's scheme only; 0 elsewhere
    removed_classes: int  # REFL's class filter, per client


def resolve_num_clients(job: JobConfig, num_train: int) -> int:
    """The number of generated clients, as REFL's and Halor's executors decide it: with used_samples < 0,
    len(train) // (batch_size + 1) whatever total_clients says; else total_clients when > 0; else num_participants
    (their total_worker, which FedScale's executor also partitions over). 0 under the real mapping."""
    if job.partitioning == REAL_CLIENTS:
        return 0
    if job.used_samples < 0:
        count = num_train // (job.batch_size + 1)
        if count < 1:
            raise ConfigError(f"used_samples {job.used_samples} gives clients of batch_size + 1 = {job.batch_size + 1} "
                              f"samples, more than the {num_train} training samples of {job.data_set}; lower "
                              f"batch_size or set used_samples >= 0")
        if job.total_clients and job.total_clients != count:
            logger.warning("used_samples %d: %d clients (len(train) %d // (batch_size + 1)) instead of total_clients "
                           "%d, as REFL and Halor do", job.used_samples, count, num_train, job.total_clients)
        else:
            logger.info("used_samples %d: %d clients (len(train) %d // (batch_size + 1))", job.used_samples, count,
                        num_train)
        return count
    if job.total_clients > 0:
        return job.total_clients
    logger.info("total_clients 0: partitioning %d (%s) makes num_participants = %d clients, as FedScale, REFL and "
                "Halor do without a client mapping", job.partitioning, SCHEME_NAMES.get(job.partitioning, "?"),
                job.num_participants)
    return job.num_participants


def plan_partition(job: JobConfig, num_train: int, num_classes: int) -> PartitionPlan:
    """Resolve total_clients, used_samples and the class filters against the opened data set."""
    num_clients = resolve_num_clients(job, num_train)
    per_client = 0
    if job.partitioning == HALOR_DIRICHLET:
        per_client = samples_per_client(job.used_samples, num_train, num_clients, job.batch_size)
    removed = 0
    if job.filter_class > 0 or job.filter_class_ratio > 0:
        if job.partitioning in CLASS_FILTER_SCHEMES:
            removed = removed_class_count(job.filter_class, job.filter_class_ratio, num_classes)
        else:
            logger.warning("filter_class / filter_class_ratio are not used with partitioning %d: REFL and Halor "
                           "filter classes only in the generated non-IID partitions (%s)", job.partitioning,
                           ", ".join(str(code) for code in sorted(CLASS_FILTER_SCHEMES)))
    return PartitionPlan(num_clients, num_classes, per_client, removed)


def check_participants(job: JobConfig, num_clients: int) -> None:
    """num_participants <= the partition's clients, checked here because the config cannot know the count when
    total_clients is 0, used_samples < 0 or the clients are the real mapping's."""
    if job.num_participants <= num_clients:
        return
    if job.partitioning == REAL_CLIENTS:
        origin, remedy = "its real client mapping, partitioning 0, where total_clients is not used", ""
    elif job.used_samples < 0:
        origin = f"used_samples {job.used_samples} makes len(train) // (batch_size + 1) of them"
        remedy = " or set used_samples >= 0"
    else:
        origin, remedy = f"total_clients {job.total_clients}", " or raise total_clients"
    raise ConfigError(f"num_participants {job.num_participants} is more than the {num_clients} clients of "
                     f"{job.data_set} ({origin}); lower num_participants{remedy}")


def _generated_schemes() -> str:
    return ", ".join(f"{code} {name}" for code, name in sorted(SCHEME_NAMES.items()) if code != REAL_CLIENTS)


def no_client_left(job: JobConfig, partitions: list[np.ndarray]) -> ConfigError:
    """The error for filters that keep no client, with the client sizes that would have kept one."""
    sizes = [len(part) for part in partitions]
    largest, smallest = max(sizes, default=0), min(sizes, default=0)
    filters = f"filter_less={job.filter_less}" + (f" and filter_more={job.filter_more}" if job.filter_more else "")
    if job.filter_less > largest or not job.filter_more:
        remedy = f"lower filter_less to at most {largest}"
    elif smallest > job.filter_more:
        remedy = f"raise filter_more to at least {smallest}"
    else:
        remedy = "widen the range from filter_less to filter_more"
    return ConfigError(f"{filters} leaves no client of {job.data_set}: the largest of its {len(sizes)} clients holds "
                       f"{largest} samples, the smallest {smallest}; {remedy}")


def group_label_maps(groups: int, num_classes: int) -> tuple[np.ndarray, ...]:
    """Label maps of planted client groups: group g shifts each label by g * (num_classes // groups), so that
    the groups' tasks share their inputs and disagree on every label (for groups >= 2)."""
    if groups < 1 or groups > num_classes:
        raise ConfigError(f"label_groups {groups}: expected 1 to num_classes ({num_classes}) groups")
    step = num_classes // groups
    return tuple((np.arange(num_classes) + group * step) % num_classes for group in range(groups))


def _label_counts(partitions: Mapping[int, np.ndarray], train_labels: np.ndarray, maps: tuple[np.ndarray, ...],
                  num_classes: int) -> np.ndarray:
    """Samples of each class over the clients' rows (each client's under its group's map), a bincount per group."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for group, label_map in enumerate(maps):
        parts = [rows for client, rows in partitions.items() if client % len(maps) == group]
        if parts:
            counts += np.bincount(label_map[train_labels[np.concatenate(parts)]], minlength=num_classes)
    return counts


class FederatedDataset:
    """Clients over a memory-mapped prepared data set; reading a client touches only that client's rows.

    Client ids are the partition's client numbers (0-based); clients without samples, or removed by
    filter_less / filter_more, are absent, so ``client_ids`` may have gaps.
    """

    def __init__(self, dataset: PreparedDataset, client_indices: Mapping[int, np.ndarray],
                 num_classes: int | None = None, *, partition_clients: int | None = None,
                 partition_label_counts: np.ndarray | None = None, label_groups: int = 1) -> None:
        """``label_groups``: planted groups of clients (client id mod label_groups) whose label maps differ
        (``label_map``); each group's clients are tested on the test set under their group's map, their test view."""
        self._dataset = dataset
        self._clients = {int(client): np.asarray(indices, dtype=np.int64)
                         for client, indices in sorted(client_indices.items())}
        # Labels are small next to the features and every statistic needs them, so they live in memory.
        self._train_labels = np.array(dataset.train_labels)
        self._num_classes = num_classes if num_classes else dataset.num_classes
        if self._num_classes < dataset.num_classes:
            raise ValueError(f"num_classes {self._num_classes} is smaller than the {dataset.num_classes} classes "
                             f"of {dataset.name}")
        self._client_ids = tuple(self._clients)  # read every round by the aggregator: made once
        self._partition_clients = partition_clients if partition_clients is not None else len(self._clients)
        self._label_maps = group_label_maps(label_groups, self._num_classes)  # refuses impossible groups
        if partition_label_counts is None:
            partition_label_counts = _label_counts(self._clients, self._train_labels,
                                                   self._label_maps, self._num_classes)
        self._partition_label_counts = np.asarray(partition_label_counts, dtype=np.int64)

    @classmethod
    def from_job(cls, job: JobConfig, working_dir: Path | None = None) -> FederatedDataset:
        """Open (preparing on first use) and partition the job's data set; ``working_dir`` defaults to the cwd."""
        working_dir = working_dir or Path.cwd()
        data_dir = resolve_data_dir(job.data_dir, job.data_set, working_dir)
        check_data_map_file(job.data_map_file, job.data_set, data_dir, working_dir)
        dataset = open_dataset(job.data_set, data_dir)
        if job.num_classes and job.num_classes < dataset.num_classes:
            raise ConfigError(f"num_classes {job.num_classes} is smaller than the {dataset.num_classes} classes of "
                              f"{job.data_set}; set it to 0 to take the data set's own")
        if job.partitioning == REAL_CLIENTS and dataset.train_owners is None:
            raise ConfigError(f"partitioning 0 uses the real clients of a data set, and {job.data_set} has none; "
                              f"choose a generated partition ({_generated_schemes()})")
        plan = plan_partition(job, dataset.num_train, job.num_classes or dataset.num_classes)
        partitions = cached_partition(dataset, plan.num_clients, job.partitioning, job.sample_seed,
                                      dirichlet_alpha=job.dirichlet_alpha, zipf_param=job.zipf_param,
                                      num_classes=plan.num_classes, samples_per_client=plan.samples_per_client,
                                      removed_classes=plan.removed_classes)
        check_participants(job, len(partitions))
        # A client without samples cannot train, whatever filter_less says.
        clients = filter_clients(partitions, max(job.filter_less, 1), job.filter_more)
        if not clients:
            raise no_client_left(job, partitions)
        if len(clients) < job.num_participants:
            logger.warning("only %d of the %d clients of %s have between filter_less=%d and filter_more=%d samples, "
                           "fewer than num_participants (%d)", len(clients), len(partitions), job.data_set,
                           job.filter_less, job.filter_more, job.num_participants)
        logger.info("partitioning %d (%s): %d clients, %d kept by filter_less / filter_more", job.partitioning,
                    SCHEME_NAMES[job.partitioning], len(partitions), len(clients))
        # Every client of the partition, filtered ones included: Halor's exact global distribution counts them all.
        label_counts = _label_counts(dict(enumerate(partitions)), np.asarray(dataset.train_labels),
                                     group_label_maps(job.label_groups, plan.num_classes), plan.num_classes)
        return cls(dataset, clients, plan.num_classes, partition_clients=len(partitions),
                   partition_label_counts=label_counts, label_groups=job.label_groups)

    @property
    def dataset(self) -> PreparedDataset:
        return self._dataset

    @property
    def client_ids(self) -> tuple[int, ...]:
        return self._client_ids

    @property
    def num_partition_clients(self) -> int:
        """Clients the partition made (total_clients once resolved, or the real mapping's count), before
        filter_less / filter_more; ``client_ids`` holds those that passed the filters."""
        return self._partition_clients

    @property
    def partition_label_counts(self) -> np.ndarray:
        """Samples of each class over every client of the partition, filtered ones included (a sample held by two
        clients counts twice); normalised, this is Halor's exact global label distribution."""
        return self._partition_label_counts.copy()

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

    def sample_counts(self) -> dict[int, int]:
        """Every client's number of training samples, in ``client_ids`` order."""
        return {client: len(rows) for client, rows in self._clients.items()}

    def client_labels(self, client_id: int) -> np.ndarray:
        """The labels of the client's samples, in the order of ``client_indices``, without reading features."""
        return self._label_maps[self.test_view(client_id)][self._train_labels[self.client_indices(client_id)]]

    @property
    def test_views(self) -> tuple[int, ...]:
        """The test views (one per planted label group; 0 alone without groups)."""
        return tuple(range(len(self._label_maps)))

    def test_view(self, client_id: int) -> int:
        """The view of the test set that ``client_id`` is evaluated on: its label group."""
        return client_id % len(self._label_maps)

    def label_counts(self, client_id: int) -> np.ndarray:
        """How many samples of each class the client holds (length num_classes)."""
        return np.bincount(self.client_labels(client_id), minlength=self._num_classes)

    def client_data(self, client_id: int, positions: np.ndarray | None = None) -> ClientData:
        """The client's samples as model inputs; ``positions`` (into its local samples, repeats allowed) picks a
        subset, as a resampler does, so that only those rows are read."""
        rows = self.client_indices(client_id)
        if positions is not None:
            rows = rows[np.asarray(positions, dtype=np.int64)]
        label_map = self._label_maps[self.test_view(client_id)]
        return ClientData(
            client_id=client_id,
            features=to_model_input(self._dataset, self._dataset.train_features[rows]),
            labels=torch.from_numpy(label_map[self._train_labels[rows]].astype(np.int64)),
        )

    def test_shard(self, index: int, count: int, view: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Shard ``index`` of ``count`` contiguous test shards of test view ``view``, as (features, labels); the
        shards cover the test set exactly once."""
        if not 0 <= view < len(self._label_maps):
            raise ValueError(f"test view {view} of {self._dataset.name}: it has {len(self._label_maps)} views")
        start, end = shard_bounds(self.num_test_samples, index, count)
        features = to_model_input(self._dataset, self._dataset.test_features[start:end])
        labels = self._label_maps[view][np.array(self._dataset.test_labels[start:end], dtype=np.int64)]
        return features, torch.from_numpy(labels.astype(np.int64))
