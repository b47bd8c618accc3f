"""Stale updates: which late updates a round accepts, and how much each one weighs in the round's mean.

A straggler's update was trained for round r but is folded into round r + s; s >= 1 is its staleness, in rounds
(an update folded into the round it was trained for is fresh, staleness 0). The round's new model is the weighted
mean of its fresh and accepted stale updates, each with the caller's coefficient (sample count, or 1) times the
multiplicative weight computed here. Fresh updates always weigh 1: every ``stale_factor`` below only damps (or
boosts) the stale ones relative to them.

``stale_update``: 0 accepts no stale update (stragglers are dropped), -1 accepts any, n >= 1 accepts those at most
n rounds late. SAFA's lag tolerance (Wu et al., "SAFA: a Semi-Asynchronous Protocol for Fast Federated Learning
with Low Overhead", IEEE Trans. Computers 2021) is ``stale_update = tolerance`` with ``stale_factor = 1``: SAFA
weighs the updates it keeps by data size alone, whatever their lag.

``stale_factor`` (codes as REFL, Abdelmoniem et al., "REFL: Resource-Efficient Federated Learning", EuroSys 2023):

* 1 (or 0, which REFL's scripts treat alike): a stale update weighs like a fresh one, 1.
* f > 1: a stale update weighs 1 / f.
* -1: every stale update of the round weighs 1 / mean_j(s_j + 1), the mean over the round's stale updates; the
  stale updates are damped by their average staleness, all by the same factor, and are not merged into one.
* -2, AdaSGD (Damaskinos et al., "FLeet: Online Federated Learning via Staleness Awareness and Performance
  Prediction", Middleware 2020): exponential dampening e^-(s + 1); FLeet's dampening is e^-(rate * staleness),
  taken here, as REFL does, with rate 1 and the staleness counted as s + 1 like DynSGD's.
* -3, DynSGD (Jiang et al., "Heterogeneity-aware Distributed Parameter Servers", SIGMOD 2017): the update is
  scaled by the inverse of its staleness plus one, 1 / (s + 1).
* -4, REFL's staleness-aware aggregation: (1 - stale_beta) / (s + 1) + stale_beta * (1 - e^-(D_i / D_max) /
  scale_coff), a convex mix of DynSGD's damping and a boost that grows with D_i, how far stale update i lies from
  the round's fresh average (``refl_deviation``); D_max is the largest D over the round's stale updates. A stale
  update far from the fresh ones carries what they lack (data of clients that are rarely fast), so it is damped
  less.

REFL's own code computes 1 / (s + 1) under code -2 and e^-(s + 1) under code -3, the reverse of the methods'
names; here each code computes the method it names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedscale_halor.aggregation.weighted import require_same_layout
from fedscale_halor.types import Weights

STALE_OFF = 0
STALE_UNLIMITED = -1

EQUAL_WEIGHT = 1.0
EQUAL_WEIGHT_ALIAS = 0.0
AVERAGE_STALENESS = -1.0
ADASGD = -2.0
DYNSGD = -3.0
REFL_SCALING = -4.0
_NEGATIVE_CODES = (AVERAGE_STALENESS, ADASGD, DYNSGD, REFL_SCALING)

# REFL's argument parser defaults
DEFAULT_STALE_BETA = 0.35
DEFAULT_SCALE_COFF = 10.0


def _check_stale_update(stale_update: int) -> None:
    if isinstance(stale_update, bool) or not isinstance(stale_update, int) or stale_update < STALE_UNLIMITED:
        raise ValueError(f"stale_update must be 0 (off), -1 (any staleness) or a positive number of rounds, "
                         f"got {stale_update!r}")


def accepts_stale(staleness_rounds: int, stale_update: int) -> bool:
    """Whether an update ``staleness_rounds`` rounds late (>= 1) may still enter the round, under ``stale_update``."""
    _check_stale_update(stale_update)
    if isinstance(staleness_rounds, bool) or not isinstance(staleness_rounds, int) or staleness_rounds < 1:
        raise ValueError(f"staleness_rounds of a stale update must be an integer >= 1, got {staleness_rounds!r}")
    # stale_update 0 needs no case of its own: no stale update is at most 0 rounds late
    return stale_update == STALE_UNLIMITED or staleness_rounds <= stale_update


@dataclass(frozen=True)
class StalePolicy:
    """The ``stale_update``, ``stale_factor``, ``stale_beta`` and ``scale_coff`` keys, checked once."""

    stale_update: int = STALE_OFF
    stale_factor: float = EQUAL_WEIGHT
    stale_beta: float = DEFAULT_STALE_BETA
    scale_coff: float = DEFAULT_SCALE_COFF

    def __post_init__(self) -> None:
        _check_stale_update(self.stale_update)
        factor = self.stale_factor
        if not (math.isfinite(factor) and (factor in (EQUAL_WEIGHT_ALIAS, *_NEGATIVE_CODES) or factor >= 1.0)):
            # a factor in (0, 1) would weigh stale updates above fresh ones, which no method intends
            raise ValueError(f"stale_factor must be 1 (or 0) for equal weight, > 1 to divide, or one of -1 (average "
                             f"staleness), -2 (AdaSGD), -3 (DynSGD), -4 (REFL), got {factor!r}")
        if not (math.isfinite(self.stale_beta) and 0.0 <= self.stale_beta <= 1.0):
            raise ValueError(f"stale_beta must lie in [0, 1], got {self.stale_beta!r}")
        if not (math.isfinite(self.scale_coff) and self.scale_coff >= 1.0):
            # below 1, the boost 1 - e^-x / scale_coff turns negative and could make a weight negative
            raise ValueError(f"scale_coff must be a finite number >= 1, got {self.scale_coff!r}")

    def accepts(self, staleness_rounds: int) -> bool:
        return accepts_stale(staleness_rounds, self.stale_update)


@dataclass(frozen=True)
class UpdateInfo:
    """What the weighting needs of one update: who sent it, how late it is, and (for REFL's scaling, stale
    updates only) its ``refl_deviation`` from the round's fresh average."""

    client_id: int
    staleness_rounds: int = 0
    deviation: float | None = None


@dataclass(frozen=True)
class RoundUpdateWeights:
    """Multiplicative weights, in the order of the ``fresh`` and ``stale`` updates given to ``stale_weights``."""

    fresh: tuple[float, ...]
    stale: tuple[float, ...]


def dynsgd_weight(staleness_rounds: int) -> float:
    return 1.0 / (staleness_rounds + 1)


def adasgd_weight(staleness_rounds: int) -> float:
    return math.exp(-(staleness_rounds + 1))


def average_staleness_weight(staleness_of_round: Sequence[int]) -> float:
    """1 / mean(s + 1) over the round's stale updates: the one weight every stale update gets under code -1."""
    if not staleness_of_round:
        raise ValueError("average_staleness_weight needs the staleness of at least one stale update")
    return len(staleness_of_round) / sum(staleness + 1 for staleness in staleness_of_round)


def refl_deviation(stale_update: Weights, fresh_average: Weights) -> float:
    """D = sum over floating tensors of ||stale_update - fresh_average||^2, in float64.

    REFL divides this by (n + 1)^2 ||fresh_average||^2 (n fresh updates); that factor is the same for every stale
    update of the round and cancels in D_i / D_max, so it is left out, and a zero fresh average needs no special
    case. Integer tensors are counters, not weights, and do not count.
    """
    require_same_layout(fresh_average, stale_update, "the stale update")
    total = 0.0
    for key, average in fresh_average.items():
        if not average.is_floating_point():
            continue
        difference = stale_update[key].detach().to(device=average.device, dtype=torch.float64) - average.detach().to(
            torch.float64)
        total += float(difference.square().sum())
    return total


def refl_scale(deviation: float, largest_deviation: float, staleness_rounds: int, stale_beta: float,
               scale_coff: float) -> float:
    """(1 - stale_beta) / (s + 1) + stale_beta * (1 - e^-(deviation / largest_deviation) / scale_coff).

    When every stale update of the round sits on the fresh average (largest_deviation 0), the ratio is taken as 0.
    """
    if deviation < 0 or largest_deviation < deviation:
        raise ValueError(f"deviation must lie in [0, largest_deviation], got {deviation} and {largest_deviation}")
    ratio = deviation / largest_deviation if largest_deviation > 0 else 0.0
    damping = dynsgd_weight(staleness_rounds)
    boost = 1.0 - math.exp(-ratio) / scale_coff
    return (1.0 - stale_beta) * damping + stale_beta * boost


def stale_weights(policy: StalePolicy, fresh: Sequence[UpdateInfo], stale: Sequence[UpdateInfo]) -> RoundUpdateWeights:
    """The multiplicative weight of each of the round's updates under ``policy.stale_factor`` (module docstring).

    ``fresh`` must have staleness 0 and ``stale`` only updates the policy accepts. Under code -4 each stale update
    needs its ``deviation``, unless the round has no fresh update: without a fresh average there is no deviation to
    measure and every ratio is taken as 0.
    """
    for update in fresh:
        if update.staleness_rounds != 0:
            raise ValueError(f"fresh update of client {update.client_id} has staleness_rounds "
                             f"{update.staleness_rounds}, expected 0")
    for update in stale:
        if not policy.accepts(update.staleness_rounds):
            raise ValueError(f"stale update of client {update.client_id} is {update.staleness_rounds} rounds late, "
                             f"which stale_update={policy.stale_update} does not accept")
    fresh_weights = tuple(1.0 for _ in fresh)
    return RoundUpdateWeights(fresh=fresh_weights, stale=_stale_only_weights(policy, stale, bool(fresh)))


def _stale_only_weights(policy: StalePolicy, stale: Sequence[UpdateInfo], has_fresh: bool) -> tuple[float, ...]:
    factor = policy.stale_factor
    if not stale:
        return ()
    if factor in (EQUAL_WEIGHT, EQUAL_WEIGHT_ALIAS):
        return tuple(1.0 for _ in stale)
    if factor > EQUAL_WEIGHT:
        return tuple(1.0 / factor for _ in stale)
    if factor == AVERAGE_STALENESS:
        shared = average_staleness_weight([update.staleness_rounds for update in stale])
        return tuple(shared for _ in stale)
    if factor == ADASGD:
        return tuple(adasgd_weight(update.staleness_rounds) for update in stale)
    if factor == DYNSGD:
        return tuple(dynsgd_weight(update.staleness_rounds) for update in stale)
    deviations = [_deviation_of(update) if has_fresh else 0.0 for update in stale]
    largest = max(deviations)
    return tuple(refl_scale(deviation, largest, update.staleness_rounds, policy.stale_beta, policy.scale_coff)
                 for update, deviation in zip(stale, deviations, strict=True))


def _deviation_of(update: UpdateInfo) -> float:
    if update.deviation is None:
        raise ValueError(f"stale_factor=-4 needs the deviation of the stale update of client {update.client_id}")
    if not (math.isfinite(update.deviation) and update.deviation >= 0):
        raise ValueError(f"deviation of the stale update of client {update.client_id} must be a finite number >= 0, "
                         f"got {update.deviation!r}")
    return update.deviation
