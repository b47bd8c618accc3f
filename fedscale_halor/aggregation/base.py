"""The Strategy and ServerOptimizer abstractions of server-side aggregation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch

from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.types import TrainResult, Weights


def arrival_independent_order(results: Sequence[TrainResult]) -> list[TrainResult]:
    """Results sorted by client id (then round and model version, for stale duplicates of one client), so that
    floating-point sums never depend on the order in which updates arrived."""
    return sorted(results, key=lambda result: (result.client_id, result.round, result.model_version))


class Strategy(ABC):
    """Turns the global weights and the clients' results of a round into the next global weights."""

    def aggregate(self, global_weights: Weights, results: Sequence[TrainResult]) -> dict[str, torch.Tensor]:
        return self.combine(global_weights, arrival_independent_order(results))

    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        """A fold that takes the round's results as they arrive. By default it keeps them all and aggregates at the
        end; strategies whose math allows it fold each result in at once."""
        return _BufferedFold(self, global_weights)

    @abstractmethod
    def combine(self, global_weights: Weights, ordered_results: Sequence[TrainResult]) -> dict[str, torch.Tensor]:
        """The new global weights from results already sorted by ``arrival_independent_order``."""

    def register_clients(self, client_sizes: Mapping[int, int]) -> None:
        """The job's clients and their training-set sizes, once before the first round (after a restore too).
        Strategies that keep per-client state over the whole population (FedDC) need them; others ignore them."""
        return None

    def task_state(self, client_id: int) -> Mapping[str, torch.Tensor]:
        """What this client's next task carries for its trainer (``TrainTask.client_state``); the trainer's answer
        comes back in ``TrainResult.client_state`` through the round's fold. Empty for strategies without
        per-client state."""
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Server-side state to checkpoint (none for stateless strategies)."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, but the checkpoint has key {next(iter(state))!r}")


class _BufferedFold(RoundFold):
    def __init__(self, strategy: Strategy, global_weights: Weights) -> None:
        self._strategy = strategy
        self._global = global_weights
        self._results: list[TrainResult] = []

    def add(self, result: TrainResult) -> None:
        self._results.append(result)

    def finish(self) -> dict[str, torch.Tensor]:
        return self._strategy.aggregate(self._global, self._results)


class ServerOptimizer(ABC):
    """Moves the global weights along the pseudo-gradient ``delta = averaged - global``."""

    @abstractmethod
    def step(self, global_weights: Weights, averaged: Weights) -> dict[str, torch.Tensor]:
        """The new global weights."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The optimizer's state as a flat dict of tensors (safetensors-compatible)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` exported."""
