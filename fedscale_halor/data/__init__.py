"""Data sets, their one-time preparation into memory-mapped arrays, partitions, and the per-client view."""

from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.data.partition import filter_clients, partition_indices
from fedscale_halor.data.prepare import prepare_dataset
from fedscale_halor.data.store import PreparedDataset, open_dataset, to_model_input

__all__ = [
    "FederatedDataset",
    "PreparedDataset",
    "filter_clients",
    "open_dataset",
    "partition_indices",
    "prepare_dataset",
    "to_model_input",
]
