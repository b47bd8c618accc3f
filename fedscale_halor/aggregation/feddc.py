"""FedDC's server side (Gao et al., CVPR 2022; the client side is ``fedscale_halor.client.feddc``).

Each round, for the clients S that trained from the global model w:

    h_i = h_i + (theta_i - w)                        for i in S (theta_i - w reported by the client)
    w'  = mean_{i in S}(theta_i) + mean_{all clients j}(h_j)

as FedDC's reference code forms its global model: the selected clients' models, corrected by the drift averaged
over the whole population (``drift.py``). The model mean is by sample counts, or plain with ``weighted=False``
(Halor's setting); buffers (BatchNorm statistics), which have no drift, take the model mean alone. With a server
optimizer (FedYogi, FedAdam) w' is the point it steps towards. Stale updates (``stale_update``) enter the model
mean with their staleness weight, and move their client's drift by their full increment, computed on the client
against the model they trained from.

Every increment is applied in client-id order (fresh updates through ``InClientOrder``, stale ones after them in a
fixed order), so the float64 drift sum, and with it the model, does not depend on which executor trained whom.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from fedscale_halor.aggregation.base import ServerOptimizer, Strategy
from fedscale_halor.aggregation.drift import DRIFT_PREFIX, DRIFT_SUM_PREFIX, DriftBook
from fedscale_halor.aggregation.fold import InClientOrder, RoundFold
from fedscale_halor.aggregation.weighted import RunningWeightedMean, clone_weights
from fedscale_halor.types import TrainResult, Weights

OPTIMIZER_PREFIX = "server_optimizer."


def drift_corrected(model_mean: Weights, drift_mean: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """model_mean + drift_mean for the tensors that have a drift (sum in float64, cast back to the model's dtype);
    the others as they are."""
    corrected = dict(model_mean)
    for name, drift in drift_mean.items():
        if name not in corrected:
            raise ValueError(f"the FedDC drift has parameter {name!r}, which the model does not")
        mean = corrected[name]
        if drift.shape != mean.shape:
            raise ValueError(f"the FedDC drift of {name!r} has shape {tuple(drift.shape)}, the model has "
                             f"{tuple(mean.shape)}")
        corrected[name] = (mean.to(torch.float64) + drift.to(device=mean.device)).to(mean.dtype)
    return corrected


class FedDC(Strategy):
    """Keeps every client's drift, hands it out with the client's tasks and forms the drift-corrected model."""

    def __init__(self, weighted: bool = True, optimizer: ServerOptimizer | None = None) -> None:
        self.weighted = weighted
        self.optimizer = optimizer
        self.drifts = DriftBook(weighted)

    def register_clients(self, client_sizes: Mapping[int, int]) -> None:
        self.drifts.register(client_sizes)

    def task_state(self, client_id: int) -> Mapping[str, torch.Tensor]:
        return self.drifts.drift(client_id)

    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        return _DriftFold(self, global_weights, expected_client_ids)

    def next_global(self, global_weights: Weights,
                    model_mean: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        if model_mean is None:  # no client trained on anything: nothing moved
            return clone_weights(global_weights)
        corrected = drift_corrected(model_mean, self.drifts.mean())
        return corrected if self.optimizer is None else self.optimizer.step(global_weights, corrected)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = self.drifts.state_dict()
        if self.optimizer is not None:
            state.update({OPTIMIZER_PREFIX + key: value for key, value in self.optimizer.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        ours = {key: value for key, value in state.items() if key.startswith((DRIFT_PREFIX, DRIFT_SUM_PREFIX))}
        theirs = {key[len(OPTIMIZER_PREFIX):]: value for key, value in state.items()
                  if key.startswith(OPTIMIZER_PREFIX)}
        unknown = sorted(set(state) - set(ours) - {OPTIMIZER_PREFIX + key for key in theirs})
        if unknown:
            raise ValueError(f"unknown FedDC state key {unknown[0]!r}")
        if theirs and self.optimizer is None:
            raise ValueError("the checkpoint has server optimizer state, but this FedDC job runs without one")
        self.drifts.load_state_dict(ours)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(theirs)


class _Consumer:
    """Takes each result in order: moves its client's drift and adds its model to the mean."""

    def __init__(self, drifts: DriftBook, mean: RunningWeightedMean, weighted: bool) -> None:
        self._drifts = drifts
        self._mean = mean
        self._weighted = weighted

    def __call__(self, result: TrainResult, weight: float = 1.0) -> None:
        self._drifts.add(result.client_id, result.client_state)
        if result.num_samples > 0 and weight > 0:
            coefficient = (float(result.num_samples) if self._weighted else 1.0) * weight
            self._mean.add(result.weights, coefficient, f"the update of client {result.client_id}")


class _DriftFold(RoundFold):
    in_client_order = True

    def __init__(self, strategy: FedDC, global_weights: Weights, expected_client_ids: Iterable[int]) -> None:
        self._strategy = strategy
        self._global = global_weights
        self._mean = RunningWeightedMean(global_weights)
        self._consume = _Consumer(strategy.drifts, self._mean, strategy.weighted)
        # the order holds the consumer, not this fold: no fold <-> order cycle (see MeanFold)
        self._order = InClientOrder(expected_client_ids, self._consume)

    @property
    def base_weights(self) -> Weights:
        return self._global

    def add(self, result: TrainResult) -> None:
        self._order.add(result)

    def fresh_mean(self) -> dict[str, torch.Tensor] | None:
        self._order.drain()
        return self._mean.mean()

    def add_stale(self, result: TrainResult, weight: float) -> None:
        self._order.drain()
        self._consume(result, weight)

    def finish(self) -> dict[str, torch.Tensor]:
        self._order.drain()
        return self._strategy.next_global(self._global, self._mean.mean())
