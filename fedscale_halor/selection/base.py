"""The client-selection seam: one small abstract class, one registry of names in selection/registry.py."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


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


class ClientSelector(ABC):
    """Chooses each round's participants among the feasible clients and learns from their outcomes."""

    def register(self, clients: Mapping[int, ClientInfo]) -> None:  # noqa: B027
        """Called once before the first round with every client; selectors without state ignore it."""

    @abstractmethod
    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        """Return at most ``count`` distinct client ids from ``feasible``."""

    def feedback(self, round_index: int, outcomes: Sequence[ClientOutcome]) -> None:  # noqa: B027
        """Learn from the clients that trained in ``round_index``; selectors without state ignore it."""
