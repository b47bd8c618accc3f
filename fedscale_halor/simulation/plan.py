"""The virtual clock's round: who of the selected clients finishes, who straggles, who drops out, and how long the
round lasts in simulated time. Pure: the same inputs always give the same plan.

Per client (FedScale's cost model): compute time = 3 × batch × local steps × ms per sample / 1000 (a backward pass
costs about twice a forward one), scaled by the model's cost relative to the trace's reference model; communication
time = 2 × model size / bandwidth (the model down, the update up). A client that goes offline before it finishes,
or that the dropout ratio knocks out, drops out.

Completion (``exp_type``):
- ``first_k``: the first K finishers complete (FedScale and Oort's rule); the round lasts until the K-th finishes.
- ``deadline``: clients that finish within the deadline complete; the round lasts the deadline, or less when every
  selected client reported before it. A deadline ≤ 0 means the moving average of the previous rounds' durations
  (the first round, with no history, waits for everyone who finishes).
- ``target_ratio``: the first ceil(target_ratio × selected) finishers complete.
Finishers past the cut are stragglers; the caller drops them or keeps them as stale updates. A round nobody
finishes lasts no time on the clock (first_k and target_ratio).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

EXP_TYPES = ("first_k", "deadline", "target_ratio")


@dataclass(frozen=True)
class ClientTiming:
    """What the clock needs of one client this round: its device speed, link speed, and how long it stays online
    from the round's start (``math.inf``: always online)."""

    compute_ms_per_sample: float
    bandwidth_kbps: float
    online_for_s: float = math.inf


@dataclass(frozen=True)
class RoundTiming:
    """The job's settings that decide a round's timing."""

    num_participants: int
    batch_size: int
    local_steps: int
    model_bytes: int
    exp_type: str = "first_k"
    deadline_s: float = 0.0
    target_ratio: float = 1.0
    dropout_ratio: float = 0.0
    model_cost_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.exp_type not in EXP_TYPES:
            raise ValueError(f"exp_type must be one of {', '.join(EXP_TYPES)}, got {self.exp_type!r}")
        if self.num_participants < 1 or self.batch_size < 1 or self.local_steps < 0 or self.model_bytes < 0:
            raise ValueError("num_participants and batch_size must be positive, local_steps and model_bytes "
                             "non-negative")
        if not 0.0 < self.target_ratio <= 1.0:
            raise ValueError(f"target_ratio must lie in (0, 1], got {self.target_ratio}")
        if not 0.0 <= self.dropout_ratio < 1.0:
            raise ValueError(f"dropout_ratio must lie in [0, 1), got {self.dropout_ratio}")
        if self.model_cost_scale <= 0:
            raise ValueError(f"model_cost_scale must be positive, got {self.model_cost_scale}")


@dataclass(frozen=True)
class RoundPlan:
    """``completed`` in finishing order; ``stragglers`` finish after the cut (seconds after the round's start);
    ``dropped`` never finish; ``duration_s`` is the round's length on the virtual clock."""

    completed: tuple[int, ...]
    stragglers: tuple[tuple[int, float], ...]
    dropped: tuple[int, ...]
    duration_s: float
    finish_s: Mapping[int, float] = field(default_factory=dict)  # every finisher's time, cut or not


def client_round_seconds(timing: ClientTiming, settings: RoundTiming) -> float:
    """Compute plus communication time of one client's round."""
    compute_s = 3.0 * settings.batch_size * settings.local_steps * timing.compute_ms_per_sample / 1000.0
    compute_s *= settings.model_cost_scale
    communicate_s = 2.0 * settings.model_bytes * 8.0 / (timing.bandwidth_kbps * 1000.0)
    return compute_s + communicate_s


def plan_round(selected: Sequence[int], timings: Mapping[int, ClientTiming], settings: RoundTiming, *,
               previous_durations: Sequence[float] = (), dropout_seed: int = 0) -> RoundPlan:
    """The plan of one round for the ``selected`` clients (in selection order; ties in finishing time keep it)."""
    missing = [client for client in selected if client not in timings]
    if missing:
        raise KeyError(f"no device or availability profile for client {missing[0]}")
    dropout = np.random.default_rng(dropout_seed).random(len(selected)) < settings.dropout_ratio
    finish_s: dict[int, float] = {}
    dropped: list[int] = []
    for client, knocked_out in zip(selected, dropout, strict=True):
        seconds = client_round_seconds(timings[client], settings)
        if knocked_out or seconds > timings[client].online_for_s:
            dropped.append(client)
        else:
            finish_s[client] = seconds
    order = sorted(finish_s, key=lambda client: finish_s[client])  # stable: ties keep the selection order
    cut, duration_s = _cut(order, finish_s, settings, len(selected), previous_durations)
    return RoundPlan(
        completed=tuple(order[:cut]),
        stragglers=tuple((client, finish_s[client]) for client in order[cut:]),
        dropped=tuple(dropped),
        duration_s=duration_s,
        finish_s=finish_s,
    )


def _cut(order: list[int], finish_s: Mapping[int, float], settings: RoundTiming, selected_count: int,
         previous_durations: Sequence[float]) -> tuple[int, float]:
    """How many finishers complete, and the round's duration."""
    if settings.exp_type == "deadline":
        deadline = settings.deadline_s if settings.deadline_s > 0 else _moving_average(previous_durations)
        if deadline is None:  # no history yet: everyone who finishes counts
            return len(order), max(finish_s.values(), default=0.0)
        cut = sum(1 for client in order if finish_s[client] <= deadline)
        everyone_in_time = cut == selected_count
        # the server cannot know who dropped out: unless all selected reported, it waits out the deadline
        return cut, (finish_s[order[-1]] if everyone_in_time else deadline)
    wanted = (settings.num_participants if settings.exp_type == "first_k"
              else math.ceil(settings.target_ratio * selected_count))
    cut = min(wanted, len(order))
    return cut, finish_s[order[cut - 1]] if cut else 0.0


def _moving_average(durations: Sequence[float]) -> float | None:
    return sum(durations) / len(durations) if durations else None
