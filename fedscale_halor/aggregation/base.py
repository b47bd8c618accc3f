"""The Strategy and ServerOptimizer abstractions of server-side aggregation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch

from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.types import TrainResult, Weights


class Strategy(ABC):
    """Turns the global weights and the clients' results of a round into the next global weights, by a streaming
    fold: results are folded in as they arrive, in any order (see fold.py), never collected first."""

    @abstractmethod
    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        """The round's fold over the results of ``expected_client_ids``."""

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


def fold_results(strategy: Strategy, global_weights: Weights,
                 results: Sequence[TrainResult]) -> dict[str, torch.Tensor]:
    """A strategy's fold run over results at hand (tools and tests): the very same arithmetic as during a round."""
    fold = strategy.start_round(global_weights, [result.client_id for result in results])
    for result in results:
        fold.add(result)
    return fold.finish()


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
