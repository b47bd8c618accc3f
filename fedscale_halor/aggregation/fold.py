"""Aggregation while a round is still running: each update is folded in as it arrives.

Waiting for the last client before touching the first update puts the whole aggregation on the round's critical
path and keeps every update in memory. A fold consumes updates as they come and drops each once added. The mean's
sum is exact (``exact.py``), so it does not depend on which executor trained which client, nor on arrival order:
``MeanFold`` adds every result at once, and takes partial sums of several clients' updates made on the executors
that trained them (``partial.py``). ``InClientOrder`` remains for folds whose other state is still summed in
float64 in a fixed order (FedDC's drift sum): it releases results in ascending client id, holding early ones back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

import torch

from fedscale_halor.aggregation.partial import PartialSum, SumRule
from fedscale_halor.aggregation.weighted import RunningWeightedMean, clone_weights
from fedscale_halor.types import TrainResult, Weights


class RoundFold(ABC):
    """One round's aggregation: ``add`` each result as it arrives, then ``finish`` for the new global weights."""

    #: whether the fold takes results in client-id order, holding early arrivals back (``InClientOrder``): the
    #: round then hands clients out in smaller chunks, so that they come back nearer that order
    in_client_order: bool = False

    @abstractmethod
    def add(self, result: TrainResult) -> None:
        """Take one client's result (in any order)."""

    @abstractmethod
    def finish(self) -> dict[str, torch.Tensor]:
        """The new global weights from every result added."""

    def sum_rule(self) -> SumRule | None:
        """How executors may sum this fold's updates before sending them (``add_partial`` takes the sums); None,
        the default: the fold needs each update on its own."""
        return None

    def add_partial(self, partial: PartialSum) -> None:
        """Take several clients' updates summed by ``sum_rule`` (in any order, among single results too)."""
        raise TypeError(f"{type(self).__name__} takes each update on its own, not partial sums")

    @property
    @abstractmethod
    def base_weights(self) -> Weights:
        """The global weights the round's clients trained from (an update is its result minus these)."""

    @abstractmethod
    def fresh_mean(self) -> dict[str, torch.Tensor] | None:
        """The mean of the round's own updates so far (REFL's scaling measures stale updates against it)."""

    @abstractmethod
    def add_stale(self, result: TrainResult, weight: float) -> None:
        """Fold in a straggler's update from an earlier round, its coefficient multiplied by ``weight``; called
        after the round's own updates, in a fixed order."""


class InClientOrder:
    """Passes results on in ascending client id over the round's expected clients, holding back early arrivals.

    A client that never reports (it failed or was dropped) holds back the ones after it until ``drain``, which
    passes on everything still held, in ascending id; so the order passed on is always ascending.
    """

    def __init__(self, expected_client_ids: Iterable[int], consume: Callable[[TrainResult], None]) -> None:
        self._expected = sorted(set(expected_client_ids))
        self._next = 0
        self._held: dict[int, TrainResult] = {}
        self._consume = consume

    def add(self, result: TrainResult) -> None:
        client = result.client_id
        if client in self._held or client not in self._expected[self._next:]:
            raise ValueError(f"client {client} was not expected in this round, or reported twice")
        self._held[client] = result
        while self._next < len(self._expected) and self._expected[self._next] in self._held:
            self._consume(self._held.pop(self._expected[self._next]))
            self._next += 1

    def drain(self) -> None:
        for client in sorted(self._held):
            self._consume(self._held.pop(client))
        self._next = len(self._expected)

    @property
    def held(self) -> int:
        return len(self._held)


class MeanFold(RoundFold):
    """The (sample-weighted or plain) mean of the round's updates, then ``step(global, mean)``; results that trained
    on no sample are ignored, and a round without any usable result keeps the global weights.

    Results are added as they arrive, in any order, one by one or summed by executors (``add_partial``). Stale
    updates come after the round's own: once ``fresh_mean``, ``add_stale`` or ``finish`` was called, a late result
    of the round is refused, so that the fresh mean REFL measures stale updates against is the mean of every fresh
    update the fold takes.
    """

    def __init__(self, global_weights: Weights, expected_client_ids: Iterable[int], *, weighted: bool,
                 step: Callable[[Weights, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> None:
        self._global = global_weights
        self._weighted = weighted
        self._step = step
        self._mean = RunningWeightedMean(global_weights)
        # the folder holds the mean, not this fold: no reference cycle keeps a round's sums alive after it
        self._fold = _folder(self._mean, weighted)
        self._roster = _Roster(expected_client_ids)

    @property
    def base_weights(self) -> Weights:
        return self._global

    def fresh_mean(self) -> dict[str, torch.Tensor] | None:
        self._roster.close()
        return self._mean.mean()

    def add_stale(self, result: TrainResult, weight: float) -> None:
        self._roster.close()
        self._fold(result, weight)

    def add(self, result: TrainResult) -> None:
        self._roster.admit(result.client_id)
        self._fold(result)

    def sum_rule(self) -> SumRule:
        return SumRule(self._weighted)

    def add_partial(self, partial: PartialSum) -> None:
        clients = partial.client_ids
        if len(set(clients)) != len(clients):
            raise ValueError(f"the partial sum of clients {_listed(clients)} names a client twice")
        for client in clients:
            self._roster.check(client)
        self._mean.merge(partial.sums, f"the partial sum of clients {_listed(partial.client_ids)}")
        for client in partial.client_ids:
            self._roster.admit(client)

    def finish(self) -> dict[str, torch.Tensor]:
        self._roster.close()
        mean = self._mean.mean()
        if mean is None:
            return clone_weights(self._global)
        return mean if self._step is None else self._step(self._global, mean)


class _Roster:
    """The round's expected clients: each may report once, and none after the fresh updates were closed."""

    def __init__(self, expected_client_ids: Iterable[int]) -> None:
        self._waiting = set(expected_client_ids)
        self._closed = False

    def check(self, client: int) -> None:
        if self._closed or client not in self._waiting:
            raise ValueError(f"client {client} was not expected in this round, or reported twice, or after the "
                             "round's own updates were closed")

    def admit(self, client: int) -> None:
        self.check(client)
        self._waiting.discard(client)

    def close(self) -> None:
        self._closed = True


def _folder(mean: RunningWeightedMean, weighted: bool) -> Callable[..., None]:
    """Adds a result to ``mean`` with its coefficient (sample count, or 1), times ``weight`` for stale updates;
    results that trained on no sample are ignored."""

    rule = SumRule(weighted)

    def fold(result: TrainResult, weight: float = 1.0) -> None:
        coefficient = rule.coefficient(result.num_samples, weight)
        if coefficient is not None:
            mean.add(result.weights, coefficient, f"the update of client {result.client_id}")

    return fold


def _listed(clients: tuple[int, ...]) -> str:
    shown = ", ".join(str(client) for client in clients[:5])
    return shown + (f" and {len(clients) - 5} more" if len(clients) > 5 else "")
