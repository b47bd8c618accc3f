"""Which trace entries each simulated client gets: a pure function of the client ids, the traces and the options.

Device capacity, for every client: the entry whose key is congruent to the client id modulo the number of entries.
This is FedScale's rule (``client_profiles.get(client_id % n)``) wherever FedScale finds an entry: with keys
0..n-1 the entry keyed ``client_id % n``; with FedScale's 1-based keys 1..n the entry keyed by the client id itself
for ids 1..n, and key n where FedScale would ask for the absent key 0 and fall back to a made-up 1 ms / 1 kbps
device. When the keys are not n consecutive integers, the client takes the entry at position ``client_id % n`` in
the file's order (FedScale's rule for behaviour traces, ``keys[client_id % n]``). Client ids are used as given
(this package numbers its clients from 0; FedScale from 1).

Availability, by ``random_behv`` (Halor's option; a missing behaviour trace means everyone is always online, as in
FedScale and Halor):

- ``-1``: always online (``availability`` is None);
- ``0``: the trace of the same client id, by the capacity rule above (Halor looks up key ``client_id % n`` and
  draws a random trace where that key is absent; here the fallback is deterministic);
- ``1``: a trace drawn uniformly at random, with replacement, for each client;
- ``2``: a trace drawn uniformly, with replacement, from the least-available 10% of the traces: traces ranked by
  their online fraction (ties by key), the first ``max(1, n // 10)``. Halor ranks by ``duration`` (total online
  seconds), which gives the same order when all traces share one period, as FedScale's do.

Draws come from ``fedscale_halor.seeding.numpy_rng(seed, 0, purpose)`` over the clients in ascending id order.

``scale_sys`` / ``scale_sys_percent``, as Halor's client manager does it: clients are ranked by their round time,
fastest first (ties by client id), and the first ``floor(n × scale_sys_percent) + 1`` of them (Halor's loop keeps
indices 0..floor(n × p)), capped at n, have both their compute and their communication time multiplied by
``scale_sys``: compute ms per sample × scale_sys, bandwidth ÷ scale_sys. Nothing is scaled when the percent is 0.
The round time depends on the job (batch size, local steps, model size), so the caller passes it as ``round_time``;
without it clients are ranked by compute ms per sample, then by bandwidth (higher first). The choice is not random,
so ``seed`` plays no part in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.simulation.traces import Availability, DeviceCapacity

ALWAYS_ONLINE = -1
TRACE_BY_CLIENT_ID = 0
RANDOM_TRACE = 1
LEAST_AVAILABLE_TRACES = 2
RANDOM_BEHV_MODES = (ALWAYS_ONLINE, TRACE_BY_CLIENT_ID, RANDOM_TRACE, LEAST_AVAILABLE_TRACES)
LEAST_AVAILABLE_SHARE = 10


@dataclass(frozen=True)
class ClientProfile:
    """A simulated client's device: its speed, and when it is online (None: always)."""

    capacity: DeviceCapacity
    availability: Availability | None

    def is_online(self, t: float) -> bool:
        return self.availability is None or self.availability.is_online(t)

    def online_until(self, t: float) -> float:
        """Seconds from ``t`` the client stays online: 0 if offline, ``inf`` if never off."""
        return math.inf if self.availability is None else self.availability.online_until(t)


def key_picker(keys: Sequence[int]) -> Callable[[int], int]:
    """Maps a client id to its trace key (rule in the module docstring); ``keys`` in file order, not empty."""
    ordered = list(keys)
    count = len(ordered)
    lowest = min(ordered)
    if max(ordered) - lowest == count - 1 and len(set(ordered)) == count:
        return lambda client_id: lowest + (client_id - lowest) % count
    return lambda client_id: ordered[client_id % count]


def _check_options(random_behv: int, scale_sys: float, scale_sys_percent: float) -> None:
    if isinstance(random_behv, bool) or random_behv not in RANDOM_BEHV_MODES:
        raise ValueError(f"random_behv must be one of {RANDOM_BEHV_MODES}, got {random_behv!r}")
    if not 0.0 <= scale_sys_percent <= 1.0:
        raise ValueError(f"scale_sys_percent must lie in [0, 1], got {scale_sys_percent}")
    if scale_sys_percent > 0 and not (math.isfinite(scale_sys) and scale_sys > 0):
        raise ValueError(f"scale_sys must be positive and finite when scale_sys_percent > 0, got {scale_sys}")


def _availabilities(clients: list[int], behaviors: Mapping[int, Availability] | None, random_behv: int,
                    seed: int) -> dict[int, Availability | None]:
    if random_behv == ALWAYS_ONLINE or behaviors is None:
        return dict.fromkeys(clients)
    if not behaviors:
        raise ValueError(f"random_behv={random_behv} needs a behaviour trace, but it has no entries")
    keys = list(behaviors)
    if random_behv == TRACE_BY_CLIENT_ID:
        trace_key = key_picker(keys)
        return {client: behaviors[trace_key(client)] for client in clients}
    if random_behv == RANDOM_TRACE:
        pool = keys
        rng = numpy_rng(seed, 0, "random_behv random trace")
    else:
        ranked = sorted(keys, key=lambda key: (behaviors[key].online_fraction, key))
        pool = ranked[:max(1, len(ranked) // LEAST_AVAILABLE_SHARE)]
        rng = numpy_rng(seed, 0, "random_behv least available")
    picks = rng.integers(len(pool), size=len(clients))
    return {client: behaviors[pool[int(pick)]] for client, pick in zip(clients, picks, strict=True)}


def _default_rank(capacity: DeviceCapacity) -> tuple[float, float]:
    return capacity.compute_ms_per_sample, -capacity.bandwidth_kbps


def _scaled(capacities: dict[int, DeviceCapacity], scale_sys: float, scale_sys_percent: float,
            round_time: Callable[[DeviceCapacity], float] | None) -> dict[int, DeviceCapacity]:
    if scale_sys_percent <= 0 or not capacities:
        return capacities
    rank: Callable[[DeviceCapacity], object] = round_time or _default_rank
    fastest_first = sorted(capacities, key=lambda client: (rank(capacities[client]), client))
    count = min(len(fastest_first), int(len(fastest_first) * scale_sys_percent) + 1)
    scaled = dict(capacities)
    for client in fastest_first[:count]:
        capacity = capacities[client]
        scaled[client] = DeviceCapacity(compute_ms_per_sample=capacity.compute_ms_per_sample * scale_sys,
                                        bandwidth_kbps=capacity.bandwidth_kbps / scale_sys)
    return scaled


def assign_traces(client_ids: Iterable[int], capacities: Mapping[int, DeviceCapacity],
                  behaviors: Mapping[int, Availability] | None, *, random_behv: int, seed: int,
                  scale_sys: float = 1.0, scale_sys_percent: float = 0.0,
                  round_time: Callable[[DeviceCapacity], float] | None = None) -> dict[int, ClientProfile]:
    """Each client's device profile, in ascending client id order (rules in the module docstring).

    ``round_time`` estimates a device's round time for this job; it only ranks clients for ``scale_sys``.
    """
    _check_options(random_behv, scale_sys, scale_sys_percent)
    if not capacities:
        raise ValueError("the device-capacity trace has no entries")
    clients = sorted({int(client) for client in client_ids})
    capacity_key = key_picker(list(capacities))
    device = {client: capacities[capacity_key(client)] for client in clients}
    device = _scaled(device, scale_sys, scale_sys_percent, round_time)
    availability = _availabilities(clients, behaviors, random_behv, seed)
    return {client: ClientProfile(device[client], availability[client]) for client in clients}
