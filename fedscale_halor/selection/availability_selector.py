"""The participant-selection rules of REFL (Abdelmoniem et al., EuroSys'23): availability priority and the adaptive
participant target.

Availability priority. REFL prefers the clients least likely to be available later, so that the often-online
clients, which will have other chances, do not crowd them out. REFL's rule (its ``avail_priority``) splits the online
clients into two tiers: *priority* clients, predicted to be online for the coming round window but offline in the
window after it, and the rest. The priority tier goes first, in random order; the round is filled at random from the
rest. Ranking the clients by a binary score with random tie-breaking is exactly that rule. Here the score is the
client's long-run ``online_fraction`` from its availability trace (the selector seam carries no clock to forecast the
next window with), so the rule becomes: the ``count`` feasible clients with the lowest online fraction, ties in a
seeded random order per round. With equal fractions (no traces) it is uniform sampling.

Adaptive participant target. REFL's ``adapt_selection`` lowers the number of new participants of a round by the
number of stale updates (from earlier stragglers) expected to arrive within that round. That count lives with the
round loop's stale-update bookkeeping and deadline, not with a selector, so the rule is offered as pure math for the
round loop to apply before it calls ``select``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import ClientInfo, ClientSelector

# A client the selector was never told about is taken as always online, the trace-free default of ClientInfo.
_UNKNOWN_ONLINE_FRACTION = ClientInfo(num_samples=0).online_fraction


class AvailabilityPrioritySelector(ClientSelector):
    """Least available feasible clients first; ties broken by a random order drawn from (seed, round)."""

    def __init__(self, job_seed: int) -> None:
        self._job_seed = job_seed
        self._online_fraction: dict[int, float] = {}

    def register(self, clients: Mapping[int, ClientInfo]) -> None:
        for client_id, info in clients.items():
            self._online_fraction[client_id] = float(info.online_fraction)

    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        if count < 0:
            raise ValueError(f"availability priority: cannot select {count} clients (num_participants is negative)")
        pool = sorted(set(feasible))
        if count >= len(pool):
            return pool
        tie_break = numpy_rng(self._job_seed, round_index, "select").permutation(len(pool))
        fractions = np.array([self._online_fraction.get(c, _UNKNOWN_ONLINE_FRACTION) for c in pool], dtype=np.float64)
        # np.lexsort orders by its last key first: the online fraction, then the random rank among equals.
        order = np.lexsort((tie_break, fractions))
        return sorted(pool[index] for index in order[:count])

    def online_fraction(self, client_id: int) -> float:
        return self._online_fraction.get(client_id, _UNKNOWN_ONLINE_FRACTION)


ADAPT_SELECTION_OFF = 0
# Soft: fewer new participants, by the arriving stale updates, but not below a share (the cap) of the target.
ADAPT_SELECTION_SOFT = 1
# Hard: no new participants at all in a round that stale updates will reach.
ADAPT_SELECTION_HARD = 2


@dataclass(frozen=True)
class AdaptiveParticipantTarget:
    """REFL's adaptive selection. ``mode`` is REFL's ``adapt_selection`` (0 off, 1 soft, 2 hard) and ``cap`` its
    ``adapt_selection_cap``: the share of the target a soft reduction keeps at least (0: keep at least one client).

    ``arriving_stale_updates`` is what REFL counts before each selection: pending updates of earlier stragglers whose
    remaining time falls within the coming round window (its moving-average deadline) and that are still young enough
    to be aggregated (the ``stale_update`` threshold). The base target is REFL's ``round(total_worker x
    overcommitment)``, with overcommitment 1 under deadline-driven rounds.
    """

    mode: int = ADAPT_SELECTION_OFF
    cap: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in (ADAPT_SELECTION_OFF, ADAPT_SELECTION_SOFT, ADAPT_SELECTION_HARD):
            raise ValueError(f"adapt_selection must be 0 (off), 1 (soft) or 2 (hard), got {self.mode}")
        if not 0.0 <= self.cap <= 1.0:
            raise ValueError(f"adapt_selection_cap must lie in [0, 1], got {self.cap}")

    def target(self, base_target: int, arriving_stale_updates: int) -> int:
        """How many new participants to select this round."""
        if base_target < 0 or arriving_stale_updates < 0:
            raise ValueError(f"adaptive target: counts must not be negative, got target {base_target} and "
                             f"{arriving_stale_updates} arriving stale updates")
        if self.mode == ADAPT_SELECTION_OFF or arriving_stale_updates == 0:
            return base_target
        if self.mode == ADAPT_SELECTION_HARD:
            return 0
        reduced = base_target - arriving_stale_updates
        if self.cap > 0:
            # REFL keeps max(cap x target, reduced) as a float; rounding up keeps at least the capped share.
            return max(math.ceil(self.cap * base_target), reduced)
        return max(1, reduced)
