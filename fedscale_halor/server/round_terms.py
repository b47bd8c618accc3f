"""What the work board promises: the outcome of a round it ran, and when it declares an executor dead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fedscale_halor.transport.messages import ClientFailure
from fedscale_halor.types import TrainResult


@dataclass(frozen=True)
class RoundOutcome:
    results: tuple[TrainResult, ...]
    failures: tuple[ClientFailure, ...]  # in the order they were reported
    # seconds from a client's task being handed out to its update arriving, for every client that reported
    client_round_trip_s: Mapping[int, float] = field(default_factory=dict)
    # seconds from an executor taking its first task of the round to its last update of the round
    executor_round_trip_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LivenessPolicy:
    executor_timeout_s: float = 60.0
    reassign_dead_clients: bool = True
    orphan_timeout_s: float = 120.0  # how long work may wait with no executor at all before the job fails
    # how long an executor whose connection broke has to make a call again before it is declared dead
    hang_up_grace_s: float = 2.5
