"""How long client selection takes over 10^3 to 10^6 registered clients.

    python benchmark/perf/selection_scale.py [--count 100] [--rounds 20] [--warmup 20] [--seed 0]

The clients have 1-399 samples, lognormal expected durations (median 4.5 s, in half seconds) and online fractions in
tenths; every registered client is feasible in every round, handed over as a sorted numpy int64 array (what a round
loop over a million clients passes). Oort's adapter is registered from columns and warmed up with ``warmup`` rounds
of feedback (outcomes with random losses, durations around the expected ones, one straggler in ten), so that it
exploits ~``warmup x count`` explored clients; then ``rounds`` rounds are timed, each with its feedback. Printed (and
returned by ``measure_selection``), medians over the timed rounds:

- random_ms, oort_ms, availability_ms: one ``select`` call of RandomSelector, OortSelector, AvailabilityPriority;
- oort_feedback_ms: one ``feedback`` call (``count`` outcomes);
- oort_register_s, availability_register_s: ``register_columns`` with every client;
- oort_explored: clients Oort had seen train when the timing started.

Importing this module runs nothing; ``measure_selection`` is what other scripts call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientOutcome
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector

SIZES = (1_000, 10_000, 100_000, 1_000_000)

T = TypeVar("T")


def _timed(call: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _population(registered: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(registered, dtype=np.int64)
    samples = rng.integers(1, 400, size=registered)
    durations = np.round(rng.lognormal(1.5, 0.8, size=registered) * 2) / 2
    online = np.round(rng.random(registered), 1)
    return ids, samples, durations, online


def _outcomes(rng: np.random.Generator, picked: list[int], samples: np.ndarray,
              durations: np.ndarray) -> list[ClientOutcome]:
    noise = rng.lognormal(0.0, 0.3, size=len(picked))
    losses = rng.gamma(2.0, 0.5, size=len(picked))
    late = rng.random(len(picked)) < 0.1
    return [
        ClientOutcome(client_id=client, num_samples=int(samples[client]), loss_square_mean=float(losses[i]),
                      duration_s=float(durations[client] * noise[i]), completed=not bool(late[i]))
        for i, client in enumerate(picked)
    ]


def measure_selection(registered: int, count: int = 100, rounds: int = 20, seed: int = 0, *,
                      warmup: int = 20) -> dict[str, float]:
    """Median milliseconds per selection (random, Oort after ``warmup`` rounds of feedback, availability priority)
    over ``registered`` clients, all feasible, and the seconds their bulk registration takes."""
    ids, samples, durations, online = _population(registered, seed)
    rng = np.random.default_rng(seed + 1)

    random_selector = RandomSelector(seed)
    random_s = [_timed(lambda r=r: random_selector.select(r, ids, count))[0] for r in range(1, rounds + 1)]

    availability = AvailabilityPrioritySelector(seed)
    availability_register_s, _ = _timed(lambda: availability.register_columns(ids, samples, durations, online))
    availability_s = [_timed(lambda r=r: availability.select(r, ids, count))[0] for r in range(1, rounds + 1)]

    oort = OortSelector(OortSettings(seed=seed))
    oort_register_s, _ = _timed(lambda: oort.register_columns(ids, samples, durations, online))
    explored: set[int] = set()
    for round_index in range(1, warmup + 1):
        picked = oort.select(round_index, ids, count)
        oort.feedback(round_index, _outcomes(rng, picked, samples, durations))
        explored.update(picked)
    explored_at_start = len(explored)
    oort_s, feedback_s = [], []
    for round_index in range(warmup + 1, warmup + rounds + 1):
        seconds, picked = _timed(lambda r=round_index: oort.select(r, ids, count))
        oort_s.append(seconds)
        outcomes = _outcomes(rng, picked, samples, durations)
        feedback_s.append(_timed(lambda r=round_index, o=outcomes: oort.feedback(r, o))[0])

    return {
        "random_ms": 1e3 * statistics.median(random_s),
        "oort_ms": 1e3 * statistics.median(oort_s),
        "availability_ms": 1e3 * statistics.median(availability_s),
        "oort_feedback_ms": 1e3 * statistics.median(feedback_s),
        "oort_register_s": oort_register_s,
        "availability_register_s": availability_register_s,
        "oort_explored": float(explored_at_start),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20, help="rounds of Oort feedback before timing")
    parser.add_argument("--more-warmup", type=int, default=200,
                        help="also time Oort at 10^6 clients after this many rounds (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)

    from harness import wait_for_quiet_machine  # the harness lives beside this script; run it from the repo root

    wait_for_quiet_machine()
    header = (f"{'clients':>9} {'warm-up':>7} {'explored':>8} {'random ms':>9} {'oort ms':>8} {'avail ms':>8} "
              f"{'feedback ms':>11} {'oort reg s':>10} {'avail reg s':>11}")
    print(header)
    runs = [(size, args.warmup) for size in args.sizes]
    if args.more_warmup:
        runs.append((max(args.sizes), args.more_warmup))
    for size, warmup in runs:
        m = measure_selection(size, count=args.count, rounds=args.rounds, seed=args.seed, warmup=warmup)
        print(f"{size:>9} {warmup:>7} {int(m['oort_explored']):>8} {m['random_ms']:>9.2f} {m['oort_ms']:>8.2f} "
              f"{m['availability_ms']:>8.2f} {m['oort_feedback_ms']:>11.2f} {m['oort_register_s']:>10.3f} "
              f"{m['availability_register_s']:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
