"""Partial sums: the updates of several clients summed where they were trained, then merged into the round's fold.

An executor that trains hundreds of clients a round would otherwise send each update on its own: encoding, the
call, decoding and folding cost more than training a small model. A fold that only needs the weighted sum of the
updates says so with a ``SumRule``; the executor then adds each client's update to a ``PartialSummer`` and sends one
partial per chunk of clients, with the clients' statistics (without weights) beside it. The sums are exact
(``exact.py``), so the fold's mean is the same bits however the clients were grouped, by executor or by chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from fedscale_halor.aggregation.weighted import RunningWeightedMean
from fedscale_halor.types import TrainResult, Weights


@dataclass(frozen=True)
class SumRule:
    """How a fold counts one update: with its trained samples (``weighted``) or with 1; an update that trained on
    no sample counts for nothing (it carries the global weights back and would only dilute the mean)."""

    weighted: bool

    def coefficient(self, num_samples: int, weight: float = 1.0) -> float | None:
        """The update's coefficient in the sum, times ``weight`` (a stale update's); None: leave it out."""
        if num_samples <= 0 or not weight > 0:
            return None
        return (float(num_samples) if self.weighted else 1.0) * weight


@dataclass(frozen=True)
class PartialSum:
    """Some clients' updates summed by a ``SumRule``: their results without weights, and the sum of the weights."""

    results: tuple[TrainResult, ...]
    sums: RunningWeightedMean

    @property
    def client_ids(self) -> tuple[int, ...]:
        return tuple(result.client_id for result in self.results)


class PartialSummer:
    """Sums the updates of a chunk of clients, each added once, then hands the whole as plain tensors. Not
    thread-safe: an executor's lanes add under one lock."""

    def __init__(self, reference: Weights, rule: SumRule) -> None:
        self._rule = rule
        self._sums = RunningWeightedMean(reference)
        self._results: list[TrainResult] = []

    def add(self, result: TrainResult) -> None:
        """Add the client's update; a ValueError (the update is out of the exact sum's range) leaves the sum as
        it was and the client out of it."""
        coefficient = self._rule.coefficient(result.num_samples)
        if coefficient is not None:
            self._sums.add(result.weights, coefficient, f"the update of client {result.client_id}")
        self._results.append(replace(result, weights={}, client_state={}))

    @property
    def results(self) -> tuple[TrainResult, ...]:
        """The clients added, in the order they were added, without their weights."""
        return tuple(self._results)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._sums.state_dict()


def partial_sum(reference: Weights, results: tuple[TrainResult, ...], state: Mapping[str, torch.Tensor],
                name: str) -> PartialSum:
    """A partial as it arrived: the accumulator is checked against ``reference`` (the round's global weights); a
    ValueError naming ``name`` refuses anything else."""
    for result in results:
        if result.weights:
            raise ValueError(f"{name}: client {result.client_id} carries its weights as well as its share of the sum")
    return PartialSum(results, RunningWeightedMean.from_state_dict(reference, state, name))
