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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import (
    ClientIds,
    ClientInfo,
    ClientSelector,
    client_columns,
    distinct_sorted,
    id_array,
    is_sorted,
)

# A client the selector was never told about is taken as always online, the trace-free default of ClientInfo.
_UNKNOWN_ONLINE_FRACTION = ClientInfo(num_samples=0).online_fraction


class AvailabilityPrioritySelector(ClientSelector):
    """Least available feasible clients first; ties broken by a random order drawn from (seed, round)."""

    def __init__(self, job_seed: int) -> None:
        self._job_seed = job_seed
        # Registered clients as columns: sorted distinct ids and their online fractions.
        self._ids = np.empty(0, dtype=np.int64)
        self._fractions = np.empty(0, dtype=np.float64)

    def register(self, clients: Mapping[int, ClientInfo]) -> None:
        self._merge(np.fromiter(clients.keys(), dtype=np.int64, count=len(clients)),
                    np.fromiter((float(info.online_fraction) for info in clients.values()), dtype=np.float64,
                                count=len(clients)))

    def register_columns(self, client_ids: np.ndarray, num_samples: np.ndarray,
                         expected_duration_s: np.ndarray | None = None,
                         online_fraction: np.ndarray | None = None) -> None:
        ids, _, _, online = client_columns(client_ids, num_samples, expected_duration_s, online_fraction)
        self._merge(ids, online)

    def _merge(self, ids: np.ndarray, fractions: np.ndarray) -> None:
        """Add or update clients; a later value for a client replaces an earlier one, as in a dict."""
        if not self._ids.size and is_sorted(ids, strictly=True):
            self._ids, self._fractions = ids.copy(), fractions.copy()
            return
        # Newest first (the new ids read backwards), then a stable sort: each id's first entry is its latest value.
        merged_ids = np.concatenate([ids[::-1], self._ids])
        merged_fractions = np.concatenate([fractions[::-1], self._fractions])
        order = np.argsort(merged_ids, kind="stable")
        merged_ids, merged_fractions = merged_ids[order], merged_fractions[order]
        first = np.concatenate(([True], merged_ids[1:] != merged_ids[:-1]))
        self._ids, self._fractions = merged_ids[first], merged_fractions[first]

    def select(self, round_index: int, feasible: ClientIds, count: int) -> list[int]:
        if count < 0:
            raise ValueError(f"availability priority: cannot select {count} clients (num_participants is negative)")
        pool = distinct_sorted(id_array(feasible))
        if count >= len(pool):
            return pool.tolist()
        tie_break = numpy_rng(self._job_seed, round_index, "select").permutation(len(pool))
        chosen = _lowest(self._fractions_of(pool), tie_break, count)
        return sorted(pool[chosen].tolist())

    def online_fraction(self, client_id: int) -> float:
        return float(self._fractions_of(np.asarray([client_id], dtype=np.int64))[0])

    def _fractions_of(self, pool: np.ndarray) -> np.ndarray:
        if not self._ids.size:
            return np.full(len(pool), _UNKNOWN_ONLINE_FRACTION)
        if self._ids[0] == 0 and self._ids[-1] == len(self._ids) - 1:
            # Registered ids 0..n-1 (sorted and distinct): an id is its own position.
            known = (pool >= 0) & (pool < len(self._ids))
            return np.where(known, self._fractions[np.where(known, pool, 0)], _UNKNOWN_ONLINE_FRACTION)
        places = np.minimum(np.searchsorted(self._ids, pool), len(self._ids) - 1)
        known = self._ids[places] == pool
        return np.where(known, self._fractions[places], _UNKNOWN_ONLINE_FRACTION)


def _lowest(fractions: np.ndarray, tie_break: np.ndarray, count: int) -> np.ndarray:
    """Positions of the first ``count`` in the order of ``np.lexsort((tie_break, fractions))`` (by fraction, then by
    the distinct ``tie_break`` rank), in no particular order, without sorting everything."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if np.isnan(fractions).any():
        # np.lexsort orders by its last key first: the online fraction, then the random rank among equals.
        return np.lexsort((tie_break, fractions))[:count]
    edge = np.partition(fractions, count - 1)[count - 1]
    below = np.flatnonzero(fractions < edge)
    at_edge = np.flatnonzero(fractions == edge)
    needed = count - len(below)
    if needed < len(at_edge):
        at_edge = at_edge[np.argpartition(tie_break[at_edge], needed - 1)[:needed]]
    return np.concatenate([below, at_edge])


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
