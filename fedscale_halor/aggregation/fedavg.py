"""FedAvg (McMahan et al.) and FedProx's server side."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.weighted import clone_weights, require_same_layout, weighted_average
from fedscale_halor.types import TrainResult, Weights


def average_results(global_weights: Weights, ordered_results: Sequence[TrainResult],
                    weighted: bool) -> dict[str, torch.Tensor] | None:
    """Mean of the results' weights (by sample count, or unweighted), or None when no result trained on any sample.

    Results with zero samples are ignored: they carry the global weights back and would only dilute the mean.
    """
    usable = [result for result in ordered_results if result.num_samples > 0]
    if not usable:
        return None
    for result in usable:
        require_same_layout(global_weights, result.weights, f"the update of client {result.client_id}")
    coefficients = [float(result.num_samples) if weighted else 1.0 for result in usable]
    return weighted_average([result.weights for result in usable], coefficients)


class FedAvg(Strategy):
    """The sample-weighted mean of the clients' models; ``weighted=False`` gives Halor's plain mean.

    A round without any usable result keeps the global weights.
    """

    def __init__(self, weighted: bool = True) -> None:
        self.weighted = weighted

    def combine(self, global_weights: Weights, ordered_results: Sequence[TrainResult]) -> dict[str, torch.Tensor]:
        averaged = average_results(global_weights, ordered_results, self.weighted)
        return clone_weights(global_weights) if averaged is None else averaged


class FedProx(FedAvg):
    """FedProx aggregates exactly as FedAvg; its proximal term lives in the clients' local loss
    (``fedscale_halor.client.fedprox``)."""
