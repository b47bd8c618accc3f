"""FedDC's server-side bookkeeping: every client's drift h_i and their mean over the job's whole population.

h_i starts at zero and moves by theta_i - w each time client i trains (w: the global model its task started from).
The drift term of the global model is the mean of h_i over *all* clients of the job, the ones not selected this
round and the ones never selected (whose h_i is zero) included, as FedDC's reference code averages its drift array
over every client. With ``weighted`` each client counts with its number of training samples, otherwise with 1.

The coefficient-weighted sum of the drifts is kept up to date in float64 (one increment per trained client) rather
than summed again every round, which would cost one pass over the drifts of every client that ever trained.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedscale_halor.types import Weights

DRIFT_PREFIX = "drift."  # drift.<client id>.<parameter>
DRIFT_SUM_PREFIX = "drift_sum."  # drift_sum.<parameter>


class DriftBook:
    def __init__(self, weighted: bool) -> None:
        self.weighted = weighted
        self._coefficients: dict[int, float] | None = None
        self._total = 0.0
        self._drifts: dict[int, dict[str, torch.Tensor]] = {}
        self._sum: dict[str, torch.Tensor] = {}

    def register(self, client_sizes: Mapping[int, int]) -> None:
        """The job's clients and their training-set sizes (the population the drift mean runs over)."""
        if not client_sizes:
            raise ValueError("FedDC needs the job's clients to average their drifts over; none were given")
        coefficients = {int(client): float(size) if self.weighted else 1.0 for client, size in client_sizes.items()}
        total = sum(coefficients.values())
        if total <= 0:
            raise ValueError("FedDC with weighted_avg weighs drifts by the clients' sample counts, which are all zero")
        unknown = sorted(set(self._drifts) - set(coefficients))
        if unknown:
            raise ValueError(f"client {unknown[0]} has a FedDC drift but is not one of the job's clients")
        self._coefficients, self._total = coefficients, total

    def drift(self, client_id: int) -> Mapping[str, torch.Tensor]:
        """h_i (empty while it is zero); its tensors are replaced, never modified, when it moves."""
        return self._drifts.get(client_id, {})

    def add(self, client_id: int, increment: Mapping[str, torch.Tensor]) -> None:
        """h_i += increment (theta_i - w); an empty increment (a client that trained on nothing) changes nothing."""
        if not increment:
            return
        coefficient = self._coefficient(client_id)
        current = self._drifts.get(client_id)
        if self._sum and set(increment) != set(self._sum):
            raise ValueError(f"the FedDC drift increment of client {client_id} covers parameters "
                             f"{sorted(increment)}, the other clients' cover {sorted(self._sum)}")
        updated: dict[str, torch.Tensor] = {}
        for name, delta in increment.items():
            delta = delta.detach().cpu()
            previous = None if current is None else current[name]
            if previous is not None and previous.shape != delta.shape:
                raise ValueError(f"the FedDC drift increment of client {client_id} has shape {tuple(delta.shape)} "
                                 f"for {name!r}, its drift has {tuple(previous.shape)}")
            # out of place: a task handed out earlier may still hold the previous tensor
            updated[name] = delta.clone() if previous is None else previous + delta.to(previous.dtype)
            total = self._sum.get(name)
            if total is None:
                total = self._sum[name] = torch.zeros(delta.shape, dtype=torch.float64)
            total.add_(delta.to(torch.float64), alpha=coefficient)
        self._drifts[client_id] = updated

    def mean(self) -> dict[str, torch.Tensor]:
        """The float64 mean of h_i over the population, per parameter (empty while every drift is zero)."""
        if self._coefficients is None:
            raise RuntimeError("FedDC's population is unknown: register_clients() was not called")
        return {name: total / self._total for name, total in self._sum.items()}

    def _coefficient(self, client_id: int) -> float:
        if self._coefficients is None:
            raise RuntimeError("FedDC's population is unknown: register_clients() was not called")
        if client_id not in self._coefficients:
            raise ValueError(f"client {client_id} reported a FedDC drift but is not one of the job's clients")
        return self._coefficients[client_id]

    # checkpoints ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"{DRIFT_PREFIX}{client}.{name}": tensor.clone()
                 for client in sorted(self._drifts) for name, tensor in self._drifts[client].items()}
        state.update({DRIFT_SUM_PREFIX + name: total.clone() for name, total in self._sum.items()})
        return state

    def load_state_dict(self, state: Weights) -> None:
        """Restore what ``state_dict`` exported; keys of neither prefix are errors. The sum is taken as saved (not
        summed again), so a resumed job continues with the very same numbers."""
        drifts: dict[int, dict[str, torch.Tensor]] = {}
        sums: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            if key.startswith(DRIFT_SUM_PREFIX):
                sums[key[len(DRIFT_SUM_PREFIX):]] = tensor.detach().to(torch.float64).clone()
            elif key.startswith(DRIFT_PREFIX):
                client, dot, name = key[len(DRIFT_PREFIX):].partition(".")
                if not dot or not client.lstrip("-").isdigit():
                    raise ValueError(f"FedDC state key {key!r} is not drift.<client id>.<parameter>")
                drifts.setdefault(int(client), {})[name] = tensor.detach().clone()
            else:
                raise ValueError(f"unknown FedDC state key {key!r}")
        for client, drift in drifts.items():
            if set(drift) != set(sums):
                raise ValueError(f"the saved FedDC drift of client {client} covers {sorted(drift)}, the saved drift "
                                 f"sum covers {sorted(sums)}")
        if sums and not drifts:
            raise ValueError("the FedDC state has a drift sum but no client drift")
        self._drifts, self._sum = drifts, sums
