"""FedAvg (McMahan et al.) and FedProx's server side."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fold import MeanFold, RoundFold
from fedscale_halor.aggregation.weighted import RunningWeightedMean
from fedscale_halor.types import TrainResult, Weights


def average_results(global_weights: Weights, ordered_results: Sequence[TrainResult],
                    weighted: bool) -> dict[str, torch.Tensor] | None:
    """Mean of the results' weights (by sample count, or unweighted), or None when no result trained on any sample.

    Results with zero samples are ignored: they carry the global weights back and would only dilute the mean.
    """
    running = RunningWeightedMean(global_weights)
    for result in ordered_results:
        if result.num_samples > 0:
            running.add(result.weights, float(result.num_samples) if weighted else 1.0,
                        f"the update of client {result.client_id}")
    return running.mean()


class FedAvg(Strategy):
    """The sample-weighted mean of the clients' models; ``weighted=False`` gives Halor's plain mean.

    A round without any usable result keeps the global weights. Updates are folded in as they arrive.
    """

    def __init__(self, weighted: bool = True) -> None:
        self.weighted = weighted

    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        return MeanFold(global_weights, expected_client_ids, weighted=self.weighted)


class FedProx(FedAvg):
    """FedProx aggregates exactly as FedAvg; its proximal term lives in the clients' local loss
    (``fedscale_halor.client.fedprox``)."""
