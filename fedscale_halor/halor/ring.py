"""The ring of a round's clients: their order, the links between neighbours and the recovery plan after dropouts.

Ring positions 0..K-1 hold the clients c_0..c_{K-1}; link i joins c_i and c_{i+1 mod K}. Client c_i uploads
y_i = h_i + r_{i-1} - r_i (mod 2^b), where r_i is the mask of link i.

Dropout correction. Let S be the set of clients whose uploads are summed. Link j contributes -r_j through y_j and
+r_j through y_{j+1}, so in the sum over S it cancels when both ends are in S, is absent when neither is, and leaves
-r_j when only c_j is in S and +r_j when only c_{j+1} is. For a maximal cyclic run a..b of positions outside S,
link a-1 (c_{a-1} in S, c_a out) leaves -r_{a-1} and link b (c_b out, c_{b+1} in S) leaves +r_b; the links inside the
run have no end in S. Hence

    Σ_{i in S} y_i = Σ_{i in S} h_i + Σ_runs (r_b - r_{a-1})   and so   H_S = Σ_{i in S} y_i + Σ_runs (r_{a-1} - r_b).

c_{a-1} is asked for r_{a-1} (its outgoing link) and c_{b+1} for r_b (its incoming link).

At most one mask per client and round. A client that revealed both its masks would give away h_i = y_i - r_{i-1} + r_i,
so it answers one request per round and refuses the rest. A survivor whose two neighbours both dropped would be the
boundary of two runs and be asked twice; its upload is therefore discarded (it joins the runs around it, which merge,
and nobody is asked for its masks). Discarding creates no new such survivor, since its neighbours were already out.
Every remaining contributor has a contributing neighbour, so it is asked at most once.

At least three contributors. With two, each could subtract its own histogram from the sum and learn the other's;
with one, the sum is its histogram. With fewer than three contributors the plan raises NotEnoughSurvivorsError
before anyone reveals a mask, and the round keeps the previous distribution. This covers K-1 dropouts (the lone
survivor would have to reveal both masks) as a special case of both rules. For the same reason a ring needs K >= 3.

Once masks are revealed the plan is final: if a client that revealed a mask were later counted as missing, its
neighbour would be asked for its other mask and its upload would be unmasked. A failed reveal abandons the round.
The masking protects each histogram from a server that follows the protocol; a server that claimed a client
missing while holding its upload would learn that histogram from the neighbours' reveals, and the two ring
neighbours of a client together can unmask it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

MINIMUM_RING_SIZE = 3
MINIMUM_CONTRIBUTORS = 3

_ROUND_BYTES = 8
_LINK_BYTES = 4
_CLIENT_ID_BYTES = 8


class HalorProtocolError(Exception):
    """A step of the ring-masking protocol that must not go ahead."""


class RingTooSmallError(HalorProtocolError, ValueError):
    """Fewer than three clients: the sum would reveal a single client's histogram to the others."""


class NotEnoughSurvivorsError(HalorProtocolError):
    """Fewer than three uploads can be unmasked; the round keeps the previous distribution."""

    def __init__(self, contributors: int) -> None:
        super().__init__(
            f"only {contributors} upload(s) can be unmasked, at least {MINIMUM_CONTRIBUTORS} are needed to keep "
            "each histogram private; the round keeps the previous distribution"
        )
        self.contributors = contributors


def encode_unsigned(value: int, width: int, name: str) -> bytes:
    """Fixed-width big-endian bytes, so that concatenated fields cannot be read two ways."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << (8 * width):
        raise ValueError(f"{name} must be in [0, 2^{8 * width}), got {value}")
    return value.to_bytes(width, "big")


def check_ring_size(ring_size: int) -> None:
    if ring_size < MINIMUM_RING_SIZE:
        raise RingTooSmallError(
            f"a ring of {ring_size} client(s) cannot hide a histogram (each client could subtract its own from the "
            f"sum); at least {MINIMUM_RING_SIZE} are needed"
        )


def check_ring(ring: Sequence[int]) -> None:
    check_ring_size(len(ring))
    if len(set(ring)) != len(ring):
        raise ValueError(f"ring clients must be distinct, got {list(ring)}")


def ring_order(round_index: int, client_ids: Sequence[int]) -> tuple[int, ...]:
    """The round's clients in ring order, a public function of the round and the set of sampled clients.

    Every client recomputes the order from the announced set, so the server cannot seat chosen clients next to a
    target: its only lever is which clients it samples, and SHA-256 makes the neighbours of any client in a given
    set unpredictable until the set is fixed. The input order of ``client_ids`` does not matter.
    """
    ids = sorted(client_ids)
    check_ring(ids)
    set_digest = hashlib.sha256(
        b"halor-ring"
        + encode_unsigned(round_index, _ROUND_BYTES, "round_index")
        + encode_unsigned(len(ids), _LINK_BYTES, "ring size")
        + b"".join(encode_unsigned(client, _CLIENT_ID_BYTES, "client id") for client in ids)
    ).digest()

    def sort_key(client: int) -> bytes:
        return hashlib.sha256(set_digest + encode_unsigned(client, _CLIENT_ID_BYTES, "client id")).digest()

    return tuple(sorted(ids, key=sort_key))


class MaskRequest(NamedTuple):
    """Ask ``client_id`` for the mask of link ``link_index``."""

    client_id: int
    link_index: int


@dataclass(frozen=True)
class MissingRun:
    """A maximal cyclic run of ring positions first..last whose uploads are not summed."""

    first: int
    last: int


@dataclass(frozen=True)
class RecoveryPlan:
    """Which uploads are summed, which are discarded and which masks to ask for, in ring order."""

    ring: tuple[int, ...]
    contributors: tuple[int, ...]
    discarded: tuple[int, ...]
    missing_runs: tuple[MissingRun, ...]

    @property
    def requests(self) -> tuple[MaskRequest, ...]:
        size = len(self.ring)
        requests: list[MaskRequest] = []
        for run in self.missing_runs:
            before, after = (run.first - 1) % size, (run.last + 1) % size
            requests.append(MaskRequest(self.ring[before], before))
            requests.append(MaskRequest(self.ring[after], run.last))
        return tuple(sorted(requests, key=lambda request: request.link_index))

    @property
    def added_links(self) -> tuple[int, ...]:
        """Links whose masks are added to the sum of uploads (r_{a-1} of each run)."""
        return tuple((run.first - 1) % len(self.ring) for run in self.missing_runs)

    @property
    def subtracted_links(self) -> tuple[int, ...]:
        """Links whose masks are subtracted from the sum of uploads (r_b of each run)."""
        return tuple(run.last for run in self.missing_runs)


def plan_recovery(ring: Sequence[int], uploaded: Iterable[int]) -> RecoveryPlan:
    """The recovery plan for the clients of ``ring`` whose uploads arrived in time.

    Raises NotEnoughSurvivorsError when fewer than three uploads can be unmasked, before any mask is asked for.
    """
    ring = tuple(ring)
    check_ring(ring)
    uploaded_set = set(uploaded)
    strangers = uploaded_set.difference(ring)
    if strangers:
        raise ValueError(f"uploads from clients outside the ring: {sorted(strangers)}")
    size = len(ring)
    arrived = [client in uploaded_set for client in ring]
    isolated = [
        arrived[position] and not arrived[(position - 1) % size] and not arrived[(position + 1) % size]
        for position in range(size)
    ]
    summed = [arrived[position] and not isolated[position] for position in range(size)]
    contributors = tuple(client for client, keep in zip(ring, summed, strict=True) if keep)
    if len(contributors) < MINIMUM_CONTRIBUTORS:
        raise NotEnoughSurvivorsError(len(contributors))
    return RecoveryPlan(
        ring=ring,
        contributors=contributors,
        discarded=tuple(client for client, lone in zip(ring, isolated, strict=True) if lone),
        missing_runs=_missing_runs(summed),
    )


def recovery_requests(ring: Sequence[int], survivors: Iterable[int]) -> list[MaskRequest]:
    """(client to ask, link index) for each boundary of each maximal cyclic run of missing clients."""
    return list(plan_recovery(ring, survivors).requests)


def _missing_runs(summed: Sequence[bool]) -> tuple[MissingRun, ...]:
    size = len(summed)
    anchor = summed.index(True)
    runs: list[MissingRun] = []
    run_start: int | None = None
    # Walking from a summed position once around the ring sees every run whole, including one that wraps past K-1.
    for step in range(1, size + 1):
        position = (anchor + step) % size
        if not summed[position] and run_start is None:
            run_start = position
        elif summed[position] and run_start is not None:
            runs.append(MissingRun(first=run_start, last=(position - 1) % size))
            run_start = None
    return tuple(sorted(runs, key=lambda run: run.first))
