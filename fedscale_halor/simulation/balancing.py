"""Straggler balancing: clients predicted to miss a round's deadline train fewer local steps, so that they finish.

The prediction comes from the device trace (each client's speed and bandwidth), as the virtual clock's own plan
does. The deadline is the job's ``deadline`` when one is set; otherwise the time in which the round's
``num_participants`` fastest selected clients would finish at full local steps (the first-K cut). A moving-average
deadline is not used: rounds that balancing shortens would pull it down, and every later round would shorten more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from fedscale_halor.simulation.plan import (
    ClientTiming,
    RoundTiming,
    client_round_seconds,
    communication_seconds,
    step_seconds,
)


def balancing_deadline_s(selected: Sequence[int], timings: Mapping[int, ClientTiming], settings: RoundTiming) -> float:
    """The time every selected client is asked to finish by."""
    if settings.deadline_s > 0:
        return settings.deadline_s
    finish = sorted(client_round_seconds(timings[client], settings) for client in selected)
    return finish[min(settings.num_participants, len(finish)) - 1] if finish else 0.0


def balanced_local_steps(selected: Sequence[int], timings: Mapping[int, ClientTiming], settings: RoundTiming,
                         min_local_steps: int) -> dict[int, int]:
    """The clients to shorten and their local steps: the most that finish by the deadline, at least
    ``min_local_steps`` (a client too slow even for those trains them and may still miss the deadline)."""
    deadline_s = balancing_deadline_s(selected, timings, settings)
    shortened: dict[int, int] = {}
    for client in selected:
        timing = timings[client]
        if client_round_seconds(timing, settings) <= deadline_s:
            continue
        step_s = step_seconds(timing, settings)
        room_s = deadline_s - communication_seconds(timing, settings)
        steps = math.floor(room_s / step_s) if step_s > 0 and room_s > 0 else 0
        while steps > 0 and client_round_seconds(timing, settings, steps) > deadline_s:  # floating-point rounding
            steps -= 1
        steps = max(min_local_steps, steps)
        if steps < settings.local_steps:
            shortened[client] = steps
    return shortened
