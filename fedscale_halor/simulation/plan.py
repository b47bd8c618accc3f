"""The virtual clock's round: who of the selected clients finishes, who straggles, who drops out, and how long the
round lasts in simulated time. Pure: the same inputs always give the same plan.

Per client (FedScale's cost model): compute time = 3 × batch × local steps × ms per sample / 1000 (a backward pass
costs about twice a forward one), scaled by the model's cost relative to the trace's reference model; communication
time = 2 × model size / bandwidth (the model down, the update up). A client that goes offline before it finishes,
or that the dropout ratio knocks out, drops out.

Completion (``exp_type``, REFL's codes):
- 2, first K: the first K finishers complete (FedScale and Oort's rule); the round lasts until the K-th finishes.
- 1, deadline: clients that finish within the deadline complete; the round lasts the deadline, or less when every
  selected client reported before it. A deadline ≤ 0 means the moving average of the previous rounds' durations
  (the first round, with no history, waits for everyone who finishes).
- 0, deadline and target ratio: as 1, but the round also ends as soon as ceil(target_ratio × selected) clients
  have finished.
Finishers past the cut are stragglers; the caller drops them or keeps them as stale updates. A first-K round
nobody finishes lasts no time on the clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

DEADLINE_AND_TARGET, DEADLINE, FIRST_K = 0, 1, 2
EXP_TYPES = (DEADLINE_AND_TARGET, DEADLINE, FIRST_K)


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
    exp_type: int = FIRST_K
    deadline_s: float = 0.0
    target_ratio: float = 1.0
    dropout_ratio: float = 0.0
    model_cost_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.exp_type not in EXP_TYPES:
            raise ValueError(f"exp_type must be 0 (deadline and target ratio), 1 (deadline) or 2 (first K), "
                             f"got {self.exp_type!r}")
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


def client_round_seconds(timing: ClientTiming, settings: RoundTiming, local_steps: int | None = None) -> float:
    """Compute plus communication time of one client's round (of ``local_steps``, default the job's)."""
    steps = settings.local_steps if local_steps is None else local_steps
    return steps * step_seconds(timing, settings) + communication_seconds(timing, settings)


def step_seconds(timing: ClientTiming, settings: RoundTiming) -> float:
    """Compute time of one local step: a backward pass costs about twice a forward one."""
    return 3.0 * settings.batch_size * timing.compute_ms_per_sample / 1000.0 * settings.model_cost_scale


def communication_seconds(timing: ClientTiming, settings: RoundTiming) -> float:
    """The model down and the update up."""
    return 2.0 * settings.model_bytes * 8.0 / (timing.bandwidth_kbps * 1000.0)


def plan_round(selected: Sequence[int], timings: Mapping[int, ClientTiming], settings: RoundTiming, *,
               previous_durations: Sequence[float] = (), dropout_seed: int = 0,
               local_steps: Mapping[int, int] | None = None) -> RoundPlan:
    """The plan of one round for the ``selected`` clients (in selection order; ties in finishing time keep it).
    ``local_steps``: clients that train other than the job's local steps (straggler balancing)."""
    steps = local_steps or {}
    missing = [client for client in selected if client not in timings]
    if missing:
        raise KeyError(f"no device or availability profile for client {missing[0]}")
    dropout = np.random.default_rng(dropout_seed).random(len(selected)) < settings.dropout_ratio
    finish_s: dict[int, float] = {}
    dropped: list[int] = []
    for client, knocked_out in zip(selected, dropout, strict=True):
        seconds = client_round_seconds(timings[client], settings, steps.get(client))
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
    if settings.exp_type == FIRST_K:
        cut = min(settings.num_participants, len(order))
        return cut, finish_s[order[cut - 1]] if cut else 0.0
    deadline = settings.deadline_s if settings.deadline_s > 0 else _moving_average(previous_durations)
    if settings.exp_type == DEADLINE_AND_TARGET:
        wanted = math.ceil(settings.target_ratio * selected_count)
        if wanted <= len(order):  # the target is reached: the round ends then, if that is before the deadline
            reached = finish_s[order[wanted - 1]]
            deadline = reached if deadline is None else min(deadline, reached)
    if deadline is None:  # no history yet: everyone who finishes counts
        return len(order), max(finish_s.values(), default=0.0)
    cut = sum(1 for client in order if finish_s[client] <= deadline)
    if cut == selected_count:  # everyone reported in time
        return cut, finish_s[order[-1]]
    # the server cannot know who dropped out: it waits until the deadline (or the target)
    return cut, deadline


def _moving_average(durations: Sequence[float]) -> float | None:
    return sum(durations) / len(durations) if durations else None
