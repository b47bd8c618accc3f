"""The client learning-rate schedule (FedScale's step decay)."""

from __future__ import annotations


def learning_rate_at(round_index: int, base: float, decay_factor: float, decay_round: int, minimum: float) -> float:
    """``base * decay_factor ** (round_index // decay_round)``, never below ``minimum``."""
    if decay_round < 1:
        raise ValueError(f"decay_round must be at least 1, got {decay_round}")
    if round_index < 0:
        raise ValueError(f"round_index must be non-negative, got {round_index}")
    return max(minimum, base * decay_factor ** (round_index // decay_round))
