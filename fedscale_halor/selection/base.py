"""The client-selection seam: one small abstract class, one registry of names in selection/registry.py."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Client ids as selectors accept them: a sequence of ints or a numpy integer array, sorted or not.
ClientIds = Sequence[int] | np.ndarray


@dataclass(frozen=True)
class ClientInfo:
    """What a selector may know of a client before it ever runs: its data size, how long a round takes it on the
    virtual clock (its device and link, or 0 without traces), and the share of time it is online (1 without
    availability traces)."""

    num_samples: int
    expected_duration_s: float = 0.0
    online_fraction: float = 1.0


@dataclass(frozen=True)
class ClientOutcome:
    """One selected client's round, as selectors learn from it. ``completed``: its update counted in the round
    (False: it trained but finished after the cut, a straggler). ``duration_s`` is on the virtual clock (wall time
    without traces)."""

    client_id: int
    num_samples: int
    loss_square_mean: float
    duration_s: float
    completed: bool = True

    @property
    def statistical_utility(self) -> float:
        """Oort's reward: samples x sqrt(mean squared loss over the local run)."""
        return self.num_samples * math.sqrt(max(self.loss_square_mean, 0.0))


@dataclass(frozen=True)
class ClientColumns:
    """What selectors may know of every client before the first round, one entry per client: ``ClientInfo`` as
    columns (durations None: 0 s; online fractions None: always online)."""

    client_ids: np.ndarray
    num_samples: np.ndarray
    expected_duration_s: np.ndarray | None = None
    online_fraction: np.ndarray | None = None


class ClientSelector(ABC):
    """Chooses each round's participants among the feasible clients and learns from their outcomes."""

    def register(self, clients: Mapping[int, ClientInfo]) -> None:  # noqa: B027
        """Called once before the first round with every client; selectors without state ignore it."""

    def register_columns(self, client_ids: np.ndarray, num_samples: np.ndarray,
                         expected_duration_s: np.ndarray | None = None,
                         online_fraction: np.ndarray | None = None) -> None:
        """``register`` from columns, one entry per client (durations default to 0 s, online fractions to 1), so
        that a million clients need no million ClientInfo objects. This default builds the mapping and calls
        ``register``; selectors that keep columns themselves override it."""
        ids, samples, durations, online = client_columns(client_ids, num_samples, expected_duration_s,
                                                         online_fraction)
        self.register({
            client: ClientInfo(num_samples=count, expected_duration_s=duration, online_fraction=fraction)
            for client, count, duration, fraction in zip(ids.tolist(), samples.tolist(), durations.tolist(),
                                                         online.tolist(), strict=True)
        })

    @abstractmethod
    def select(self, round_index: int, feasible: ClientIds, count: int) -> list[int]:
        """Return at most ``count`` distinct client ids from ``feasible`` (a sequence of ints or a numpy int64
        array, sorted or not), as a sorted list of Python ints."""

    def feedback(self, round_index: int, outcomes: Sequence[ClientOutcome]) -> None:  # noqa: B027
        """Learn from the clients that trained in ``round_index``; selectors without state ignore it."""


def client_columns(client_ids: np.ndarray, num_samples: np.ndarray, expected_duration_s: np.ndarray | None,
                   online_fraction: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``register_columns``' arguments as int64 ids and samples and float64 durations and online fractions, checked
    to be one entry per client."""
    ids = id_array(client_ids)
    samples = np.asarray(num_samples).reshape(-1)
    if samples.size and samples.dtype.kind not in "iu":
        raise TypeError(f"register_columns: num_samples must be integers, got dtype {samples.dtype}")
    samples = samples.astype(np.int64, copy=False)
    durations = (np.zeros(len(ids)) if expected_duration_s is None
                 else np.asarray(expected_duration_s, dtype=np.float64).reshape(-1))
    online = np.ones(len(ids)) if online_fraction is None else np.asarray(online_fraction, dtype=np.float64).reshape(-1)
    if not len(ids) == len(samples) == len(durations) == len(online):
        raise ValueError(f"register_columns: {len(ids)} client ids, {len(samples)} sample counts, {len(durations)} "
                         f"durations and {len(online)} online fractions; they must be as many")
    return ids, samples, durations, online


def id_array(client_ids: ClientIds) -> np.ndarray:
    """Client ids as an int64 array (a view of an int64 array, no copy)."""
    values = client_ids if isinstance(client_ids, (np.ndarray, Sequence)) else list(client_ids)
    array = np.asarray(values).reshape(-1)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"client ids must be integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def is_sorted(ids: np.ndarray, strictly: bool = False) -> bool:
    """Whether ``ids`` ascend (strictly: without repeats); one pass, far cheaper than sorting."""
    if ids.size < 2:
        return True
    return bool(np.all(ids[1:] > ids[:-1])) if strictly else bool(np.all(ids[1:] >= ids[:-1]))


def distinct_sorted(ids: np.ndarray) -> np.ndarray:
    """``sorted(set(ids))`` as an int64 array; ids already strictly ascending are returned as they are."""
    if is_sorted(ids, strictly=True):
        return ids
    # A sort and a comparison of neighbours: np.unique's hashing is several times slower on large id arrays.
    ordered = np.sort(ids)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
