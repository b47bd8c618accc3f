"""Differential-privacy accounting for Halor's noisy histogram sums (docs/halor.md, "Privacy over a whole run").

The released quantity of a round is S = Σ h_i + Z over the round's contributors, Z symmetric Skellam noise of
variance μ per class (noise.py). Neighbouring inputs: one client's histogram differs by one sample's label, so the
difference vector is -1 in one class and +1 in another (L1 sensitivity 2, squared L2 sensitivity 2). That relation
also covers adding or removing one sample (L1 = L2² = 1), whose bound is smaller.

Per release, Agarwal, Kairouz and Liu ("The Skellam Mechanism for Differentially Private Federated Learning",
NeurIPS 2021, Theorem 3.5) bound the Rényi divergence of every integer order α > 1 for integer inputs:

    ε(α) ≤ α·Δ2²/(2μ) + min( ((2α - 1)·Δ2² + 6·Δ1) / (4μ²),  3·Δ1/(2μ) ).

The first term is the Gaussian mechanism's of equal variance; the min is Skellam's surcharge for being discrete.
Keeping only the first argument of the min (a valid upper bound: the min is at most either) makes the bound affine
in α, which is exactly a (ξ, ρ)-zCDP event of dp-accounting:

    ρ = Δ2²/(2μ) · (1 + 1/μ),    ξ = max(0, (6·Δ1 - Δ2²) / (4μ²)).

The second argument of the min is the smaller one only for orders α ≳ μ, which at any useful noise level (μ of tens
or more) are far above the order that gives the best ε, so little is lost. The theorem holds for integer orders, so
the accountant evaluates integer orders only. Rounds compose by adding RDP (dp-accounting's RdpAccountant), and the
conversion to (ε, δ) is dp-accounting's (Canonne, Kamath and Steinke's improved conversion).

The aggregator chooses the clients of every round, so no subsampling amplification is claimed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dp_accounting import dp_event

# dp-accounting (with scipy.signal behind it) takes about a second to import, and every job imports this module for
# its settings; the accounting functions import it when first called.

__all__ = [
    "LABEL_CHANGE",
    "ORDERS",
    "NoiseSettings",
    "Sensitivity",
    "epsilon_of",
    "gaussian_equivalent_event",
    "skellam_event",
    "skellam_zcdp",
    "variance_for_epsilon",
    "zcdp_epsilon",
]

# Integer Rényi orders: Theorem 3.5 is stated for integer α; the tail reaches ε well below 0.1 at δ = 1e-5.
ORDERS: tuple[int, ...] = (*range(2, 65), *range(72, 257, 8), 320, 384, 512, 768, 1024)


@dataclass(frozen=True)
class Sensitivity:
    """How far one change of a client's data can move its histogram: L1 norm and squared L2 norm."""

    l1: float
    l2_squared: float

    def __post_init__(self) -> None:
        if not (self.l1 > 0 and self.l2_squared > 0):
            raise ValueError(f"sensitivities must be positive, got L1 {self.l1} and L2² {self.l2_squared}")


# One sample's label changes: its old class loses one, its new class gains one.
LABEL_CHANGE = Sensitivity(l1=2.0, l2_squared=2.0)


def skellam_zcdp(variance: float, sensitivity: Sensitivity = LABEL_CHANGE) -> tuple[float, float]:
    """(ρ, ξ) of one release with Skellam noise of ``variance`` per class (the module docstring derives them)."""
    if not variance > 0 or not math.isfinite(variance):
        raise ValueError(f"the noise variance must be finite and > 0, got {variance}")
    rho = sensitivity.l2_squared / (2.0 * variance) * (1.0 + 1.0 / variance)
    xi = max(0.0, (6.0 * sensitivity.l1 - sensitivity.l2_squared) / (4.0 * variance**2))
    return rho, xi


def skellam_event(variance: float, sensitivity: Sensitivity = LABEL_CHANGE) -> dp_event.ZCDpEvent:
    """One release of a sum carrying Skellam noise of ``variance`` per class, as a dp-accounting event."""
    from dp_accounting import dp_event

    rho, xi = skellam_zcdp(variance, sensitivity)
    return dp_event.ZCDpEvent(rho=rho, xi=xi)


def gaussian_equivalent_event(variance: float, sensitivity: Sensitivity = LABEL_CHANGE) -> dp_event.GaussianDpEvent:
    """The Gaussian mechanism of equal variance: the leading term of the Skellam bound, a lower bound on its cost."""
    from dp_accounting import dp_event

    if not variance > 0:
        raise ValueError(f"the noise variance must be > 0, got {variance}")
    return dp_event.GaussianDpEvent(noise_multiplier=math.sqrt(variance / sensitivity.l2_squared))


def zcdp_epsilon(rho: float, xi: float, delta: float) -> float:
    """ε at ``delta`` of a (ξ, ρ)-zCDP release."""
    from dp_accounting import dp_event

    return epsilon_of(dp_event.ZCDpEvent(rho=rho, xi=xi), delta)


def epsilon_of(event: dp_event.DpEvent, delta: float, count: int = 1) -> float:
    """ε at ``delta`` of ``event`` composed ``count`` times, by dp-accounting's RDP accountant over ORDERS."""
    if count == 0:
        return 0.0
    from dp_accounting.rdp import RdpAccountant

    accountant = RdpAccountant(orders=list(ORDERS))
    return float(accountant.compose(event, count).get_epsilon(delta))


@lru_cache(maxsize=32)  # the aggregator and every in-process executor calibrate the same job
def variance_for_epsilon(target_epsilon: float, delta: float, rounds: int,
                         sensitivity: Sensitivity = LABEL_CHANGE) -> float:
    """The smallest Skellam variance per class whose release, composed ``rounds`` times, stays within
    (``target_epsilon``, ``delta``): dp-accounting's calibration over the precision 1/μ, in which ε grows."""
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    from dp_accounting import dp_event, mechanism_calibration
    from dp_accounting.rdp import RdpAccountant

    def rounds_at_precision(precision: float) -> dp_event.DpEvent:
        if precision <= 0:
            return dp_event.NoOpDpEvent()
        return dp_event.SelfComposedDpEvent(skellam_event(1.0 / precision, sensitivity), rounds)

    precision = mechanism_calibration.calibrate_dp_mechanism(
        lambda: RdpAccountant(orders=list(ORDERS)), rounds_at_precision, target_epsilon, delta,
        bracket_interval=mechanism_calibration.LowerEndpointAndGuess(0.0, 1e-3), tol=1e-12)
    # the calibration returns a precision whose ε does not exceed the target
    return 1.0 / float(precision)


@dataclass(frozen=True)
class NoiseSettings:
    """Halor's noise, the same on the aggregator and on the executors (both derive it from the job config).

    ``variance``: Skellam variance per class of a full ring's sum; each of K ring members adds variance/K.
    ``target_epsilon`` and ``rounds``: what it was calibrated for (a client contributing in every round).
    """

    variance: float
    delta: float
    target_epsilon: float
    rounds: int
    sensitivity: Sensitivity = LABEL_CHANGE

    def __post_init__(self) -> None:
        if not self.variance > 0 or not math.isfinite(self.variance):
            raise ValueError(f"the noise variance must be finite and > 0, got {self.variance}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")

    @classmethod
    def for_target(cls, target_epsilon: float, delta: float, rounds: int,
                   sensitivity: Sensitivity = LABEL_CHANGE) -> NoiseSettings:
        variance = variance_for_epsilon(target_epsilon, delta, rounds, sensitivity)
        return cls(variance, delta, target_epsilon, rounds, sensitivity)

    def round_epsilon(self) -> float:
        """ε of one full ring's release."""
        return epsilon_of(skellam_event(self.variance, self.sensitivity), self.delta)

    def magnitude_bound(self) -> int:
        """A bound on the noise of a round's sum (or of one client's share) in any class: 32 standard deviations
        and 32 more. By the Chernoff bound for Skellam variables, P(|Z| > t) <= 2·min over λ of
        exp(μ(cosh λ - 1) - λt), a class exceeds it with probability below 2e^-32."""
        return math.ceil(32.0 * math.sqrt(self.variance)) + 32
