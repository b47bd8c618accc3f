"""FedAdam and FedYogi server optimizers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Alg. 2).

With the pseudo-gradient delta = averaged - global, per tensor and element-wise:

    m = beta1 * m + (1 - beta1) * delta
    v = beta2 * v + (1 - beta2) * delta^2                        (FedAdam)
    v = v - (1 - beta2) * delta^2 * sign(v - delta^2)            (FedYogi)
    w = w + eta * m / (sqrt(v) + tau)

m starts at 0 and v at tau^2: the paper requires v_{-1} >= tau^2, and starting at tau^2 (not 0) keeps the first
steps from dividing a full-sized m by a near-zero denominator. No bias correction, as in the paper. Only floating
tensors are stepped; integer buffers (BatchNorm's num_batches_tracked) are taken from the average as they are.
The state is kept in float64 and created on first use of each tensor.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence

import torch

from fedscale_halor.aggregation.base import ServerOptimizer, Strategy
from fedscale_halor.aggregation.fold import MeanFold, RoundFold
from fedscale_halor.aggregation.weighted import require_same_layout
from fedscale_halor.types import Weights

FIRST_MOMENT_PREFIX = "first_moment."
SECOND_MOMENT_PREFIX = "second_moment."


class AdaptiveServerOptimizer(ServerOptimizer):
    """The shared moment bookkeeping of FedAdam and FedYogi; subclasses say how the second moment moves."""

    def __init__(self, eta: float, tau: float, beta1: float, beta2: float) -> None:
        if eta < 0 or tau < 0:
            raise ValueError(f"eta and tau must be non-negative, got eta={eta}, tau={tau}")
        if not (0.0 <= beta1 <= 1.0 and 0.0 <= beta2 <= 1.0):
            raise ValueError(f"beta1 and beta2 must lie in [0, 1], got beta1={beta1}, beta2={beta2}")
        self.eta = eta
        self.tau = tau
        self.beta1 = beta1
        self.beta2 = beta2
        self._first_moment: dict[str, torch.Tensor] = {}
        self._second_moment: dict[str, torch.Tensor] = {}

    @abstractmethod
    def next_second_moment(self, second_moment: torch.Tensor, delta_squared: torch.Tensor) -> torch.Tensor:
        """v after one step, from v and delta^2 (both float64)."""

    def step(self, global_weights: Weights, averaged: Weights) -> dict[str, torch.Tensor]:
        require_same_layout(global_weights, averaged, "the averaged model")
        stepped: dict[str, torch.Tensor] = {}
        for key, current in global_weights.items():
            if not current.is_floating_point():
                stepped[key] = averaged[key].detach().clone()
                continue
            current_wide = current.detach().to(torch.float64)
            delta = averaged[key].detach().to(device=current.device, dtype=torch.float64) - current_wide
            first, second = self._moments_for(key, current)
            first = self.beta1 * first + (1.0 - self.beta1) * delta
            second = self.next_second_moment(second, delta.square())
            self._first_moment[key] = first
            self._second_moment[key] = second
            stepped[key] = (current_wide + self.eta * first / (second.sqrt() + self.tau)).to(current.dtype)
        return stepped

    def _moments_for(self, key: str, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self._first_moment:
            zeros = torch.zeros(tensor.shape, dtype=torch.float64, device=tensor.device)
            return zeros, torch.full_like(zeros, self.tau**2)
        first, second = self._first_moment[key], self._second_moment[key]
        if first.shape != tensor.shape:
            raise ValueError(f"optimizer state for key {key!r} has shape {tuple(first.shape)}, "
                             f"the model has {tuple(tensor.shape)}")
        return first, second

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {FIRST_MOMENT_PREFIX + key: value.clone() for key, value in self._first_moment.items()}
        state.update({SECOND_MOMENT_PREFIX + key: value.clone() for key, value in self._second_moment.items()})
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        first: dict[str, torch.Tensor] = {}
        second: dict[str, torch.Tensor] = {}
        for name, value in state.items():
            if name.startswith(FIRST_MOMENT_PREFIX):
                first[name[len(FIRST_MOMENT_PREFIX):]] = value.detach().to(torch.float64).clone()
            elif name.startswith(SECOND_MOMENT_PREFIX):
                second[name[len(SECOND_MOMENT_PREFIX):]] = value.detach().to(torch.float64).clone()
            else:
                raise ValueError(f"unknown server optimizer state key {name!r}")
        unpaired = sorted(set(first) ^ set(second))
        if unpaired:
            raise ValueError(f"server optimizer state for key {unpaired[0]!r} lacks one of its two moments")
        self._first_moment, self._second_moment = first, second


class FedAdamOptimizer(AdaptiveServerOptimizer):
    def next_second_moment(self, second_moment: torch.Tensor, delta_squared: torch.Tensor) -> torch.Tensor:
        return self.beta2 * second_moment + (1.0 - self.beta2) * delta_squared


class FedYogiOptimizer(AdaptiveServerOptimizer):
    """Yogi's additive second moment grows or shrinks by at most (1 - beta2) * delta^2 per step."""

    def next_second_moment(self, second_moment: torch.Tensor, delta_squared: torch.Tensor) -> torch.Tensor:
        return second_moment - (1.0 - self.beta2) * delta_squared * torch.sign(second_moment - delta_squared)


class ServerOptimizerStrategy(Strategy):
    """Average the clients' models as FedAvg does, then let a server optimizer step towards the average.

    A round without any usable result keeps the global weights and leaves the optimizer state untouched.
    """

    def __init__(self, optimizer: ServerOptimizer, weighted: bool = True) -> None:
        self.optimizer = optimizer
        self.weighted = weighted

    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        return MeanFold(global_weights, expected_client_ids, weighted=self.weighted, step=self.optimizer.step)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.optimizer.load_state_dict(state)
