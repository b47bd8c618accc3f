"""What one round of Halor's chained masking of label histograms costs, with the protocol code run in one process.

    python benchmark/perf/halor_protocol.py [--clients 10 100 1000] [--classes 10 35 62] [--bits 32]
                                            [--dropout 0.1] [--repeats 3] [--seed 0]

For each number K of sampled clients and C of classes, a round runs end to end (docs/halor.md): the ring order, each
client's side (two link seeds: X25519 agreement + HKDF; two masks: AES-CTR; its masked histogram), the loss of a
``--dropout`` share of the uploads, the server's recovery plan, the reveals of the clients it asks, and the unmasking,
which must give the true sum of the contributors' histograms (the script stops with an error otherwise). Histograms
are multinomial draws of 50 samples over the C classes. Prints, as medians over ``--repeats`` rounds:

- client ms: mean seconds of one client's side (link seeds, masks, masked histogram) in a round;
- server ms: plan_recovery and unmask (which sums the uploads and applies the revealed masks);
- reveal ms: the asked clients' reveal_mask calls, summed over the round;
- KiB up / down / total: payload bytes on the wire per round, without protobuf or gRPC framing. Down: each client
  receives its two neighbours' 32-byte public keys, each asked client a reveal request (a 4-byte link index). Up:
  each surviving client's masked histogram and each revealed mask, C × bits/8 bytes each.

Key pairs last the whole job, so their generation is timed apart and printed once per client.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import wait_for_quiet_machine

from fedscale_halor.halor.secret_sharing import (
    KEY_BYTES,
    ClientKeys,
    ClientRingSide,
    NotEnoughSurvivorsError,
    plan_recovery,
    ring_order,
    simulated_client_keys,
    unmask,
)

SAMPLES_PER_CLIENT = 50
JOB_SEED = 0
# a reveal request names one link; the protocol encodes link indices in 4 bytes
REVEAL_REQUEST_BYTES = 4
MINIMUM_CONTRIBUTORS = 3
KIB = 1024


@dataclass(frozen=True)
class RoundCost:
    client_s_per_client: float
    server_s: float
    reveal_s: float
    ring_order_s: float
    bytes_up: int
    bytes_down: int


def timed_key_generation(num_clients: int) -> tuple[dict[int, ClientKeys], float]:
    """Every client's key pair, and the mean seconds to make one."""
    started = time.perf_counter()
    keys = {client: simulated_client_keys(JOB_SEED, client) for client in range(num_clients)}
    return keys, (time.perf_counter() - started) / num_clients


def random_histograms(rng: np.random.Generator, num_clients: int, num_classes: int) -> np.ndarray:
    return rng.multinomial(SAMPLES_PER_CLIENT, np.full(num_classes, 1 / num_classes), size=num_clients)


def draw_survivors(rng: np.random.Generator, ring: Sequence[int], dropout: float) -> set[int]:
    """The clients whose uploads arrive, redrawn until at least three can be unmasked.

    A survivor whose two neighbours both dropped is not unmasked, so leaving three uploads is not always enough.
    """
    num_dropped = min(round(dropout * len(ring)), len(ring) - MINIMUM_CONTRIBUTORS)
    while True:
        dropped = set(rng.choice(ring, size=num_dropped, replace=False).tolist())
        survivors = set(ring) - dropped
        try:
            plan_recovery(ring, survivors)
        except NotEnoughSurvivorsError:
            continue
        return survivors


def check_sum(
    unmasked: np.ndarray, histograms: Mapping[int, np.ndarray], contributors: Sequence[int], bits: int
) -> None:
    expected = np.sum([histograms[client] for client in contributors], axis=0) % (1 << bits)
    if not np.array_equal(unmasked.astype(np.int64), expected):
        raise AssertionError(f"unmasked sum {unmasked.tolist()} differs from the true sum {expected.tolist()}")


def run_round(
    keys: Mapping[int, ClientKeys], round_index: int, num_clients: int, num_classes: int, bits: int, dropout: float,
    seed: int,
) -> RoundCost:
    rng = np.random.default_rng([seed, num_clients, num_classes, round_index])
    client_ids = list(range(num_clients))
    public_keys = {client: keys[client].public_key for client in client_ids}

    started = time.perf_counter()
    ring = ring_order(round_index, client_ids)
    ring_order_s = time.perf_counter() - started

    histograms = dict(zip(ring, random_histograms(rng, num_clients, num_classes), strict=True))
    sides: dict[int, ClientRingSide] = {}
    masked: dict[int, np.ndarray] = {}
    started = time.perf_counter()
    for client in ring:
        sides[client] = ClientRingSide.for_ring(keys[client], round_index, ring, client, public_keys)
        masked[client] = sides[client].masked_histogram(histograms[client], bits)
    client_s = time.perf_counter() - started

    survivors = draw_survivors(rng, ring, dropout)
    uploads = {client: masked[client] for client in ring if client in survivors}

    started = time.perf_counter()
    plan = plan_recovery(ring, uploads)
    server_s = time.perf_counter() - started
    started = time.perf_counter()
    revealed = {request.link_index: sides[request.client_id].reveal_mask(request.link_index)
                for request in plan.requests}
    reveal_s = time.perf_counter() - started
    started = time.perf_counter()
    unmasked = unmask(uploads, ring, revealed, bits)
    server_s += time.perf_counter() - started

    check_sum(unmasked, histograms, plan.contributors, bits)
    vector_bytes = -(-num_classes * bits // 8)  # whole bytes when C × bits is not a multiple of 8
    return RoundCost(
        client_s_per_client=client_s / num_clients,
        server_s=server_s,
        reveal_s=reveal_s,
        ring_order_s=ring_order_s,
        bytes_up=(len(uploads) + len(revealed)) * vector_bytes,
        bytes_down=num_clients * 2 * KEY_BYTES + len(plan.requests) * REVEAL_REQUEST_BYTES,
    )


def median_cost(rounds: Sequence[RoundCost]) -> RoundCost:
    return RoundCost(*(statistics.median(getattr(cost, name) for cost in rounds)
                       for name in RoundCost.__dataclass_fields__))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000], help="sampled clients K")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 35, 62], help="classes C")
    parser.add_argument("--bits", type=int, default=32, help="masks and sums are taken mod 2^bits")
    parser.add_argument("--dropout", type=float, default=0.1, help="share of clients whose upload is missing")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per (K, C); medians are printed")
    parser.add_argument("--seed", type=int, default=0, help="seed of histograms and dropouts")
    args = parser.parse_args()
    if min(args.clients) < MINIMUM_CONTRIBUTORS:
        parser.error(f"--clients must be at least {MINIMUM_CONTRIBUTORS}: smaller rings cannot hide a histogram")
    if min(args.classes) < 1 or args.repeats < 1 or not 0 <= args.dropout < 1:
        parser.error("--classes and --repeats must be positive, --dropout in [0, 1)")
    # the sum is exact only mod 2^bits, so the largest possible sum must fit
    if not 1 <= args.bits <= 64 or SAMPLES_PER_CLIENT * max(args.clients) >= 1 << args.bits:
        parser.error(f"--bits must be at most 64 and leave room for {SAMPLES_PER_CLIENT} × {max(args.clients)}")
    return args


def main() -> int:
    args = parse_args()
    wait_for_quiet_machine()
    keys, key_generation_s = timed_key_generation(max(args.clients))
    rows = []
    ring_order_ms: dict[int, list[float]] = {}
    for num_clients in args.clients:
        for num_classes in args.classes:
            cost = median_cost([run_round(keys, round_index, num_clients, num_classes, args.bits, args.dropout,
                                          args.seed) for round_index in range(args.repeats)])
            ring_order_ms.setdefault(num_clients, []).append(cost.ring_order_s * 1e3)
            up, down = cost.bytes_up / KIB, cost.bytes_down / KIB
            rows.append(f"{num_clients:>6}{num_classes:>5}{cost.client_s_per_client * 1e3:>11.3f}"
                        f"{cost.server_s * 1e3:>11.3f}{cost.reveal_s * 1e3:>11.3f}{up:>9.1f}{down:>9.1f}"
                        f"{up + down:>10.1f}")
    print(f"\none round of ring masking, {args.bits}-bit words, {args.dropout:.0%} of uploads missing; "
          f"medians of {args.repeats} rounds; payload only (no protobuf or gRPC framing)")
    print(f"{'K':>6}{'C':>5}{'client ms':>11}{'server ms':>11}{'reveal ms':>11}{'KiB up':>9}{'KiB down':>9}"
          f"{'KiB total':>10}")
    print("\n".join(rows))
    print(f"\nkey generation (once per job): {key_generation_s * 1e3:.3f} ms per client")
    print("ring order (by the server and by every client, once per round): "
          + ", ".join(f"K={num_clients}: {statistics.median(ms):.3f} ms" for num_clients, ms in ring_order_ms.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
