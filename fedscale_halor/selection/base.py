"""The client-selection seam: one small abstract class, one registry of names in selection/registry.py."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from fedscale_halor.types import TrainResult


class ClientSelector(ABC):
    """Chooses each round's participants among the feasible clients and learns from their outcomes."""

    @abstractmethod
    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        """Return at most ``count`` distinct client ids from ``feasible``."""

    def feedback(self, round_index: int, results: Sequence[TrainResult]) -> None:  # noqa: B027
        """Learn from the clients that completed ``round_index``; selectors without state ignore it."""
