"""The Trainer abstraction: how one client turns the global weights into its local update."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from fedscale_halor.types import ClientData, TrainResult, TrainTask, Weights


class Trainer(ABC):
    """Trains one client's copy of the model; ``model`` is a reusable scratch module whose weights are overwritten."""

    @abstractmethod
    def train(self, model: nn.Module, global_weights: Weights, data: ClientData, task: TrainTask) -> TrainResult:
        """Load ``global_weights`` into ``model``, train it on ``data`` as ``task`` says, return the new weights."""
