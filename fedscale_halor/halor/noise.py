"""Distributed Skellam noise for Halor's label histograms (docs/halor.md, "Privacy over a whole run").

A symmetric Skellam variable of variance v is Poisson(v/2) - Poisson(v/2). It suits ring masking for two reasons:
it is integer-valued, so a noisy histogram still travels as words mod 2^b and the masks cancel exactly; and it is
closed under sums (Poisson variables add), so when each of a round's K ring members adds Skellam noise of variance
V/K per class, the sum the aggregator unmasks carries exactly Skellam noise of variance V per class, as if one
trusted party had added it. With n < K contributors (dropouts) the sum carries variance V·n/K: less noise, which the
aggregator's accounting counts.
"""

from __future__ import annotations

import numpy as np

SEED_BYTES = 32


def share_variance(variance_of_sum: float, ring_size: int) -> float:
    """Each ring member's share of the noise: variance V/K per class, so that K shares sum to variance V."""
    if not variance_of_sum >= 0.0:
        raise ValueError(f"the noise variance must be >= 0, got {variance_of_sum}")
    if ring_size < 1:
        raise ValueError(f"ring_size must be at least 1, got {ring_size}")
    return variance_of_sum / ring_size


def skellam_noise(seed: bytes, variance: float, num_classes: int) -> np.ndarray:
    """``num_classes`` independent symmetric Skellam draws of ``variance`` each (int64), reproducible from ``seed``.

    The generator is PCG64 keyed by the 32-byte seed; the seed is secret (secret_sharing.noise_seed derives it from
    the client's private key), so the draws are unpredictable to anyone without the key. A deployment that wants
    the draws themselves to be cryptographic would sample Poisson variables from a CSPRNG instead.
    """
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a noise seed has {SEED_BYTES} bytes, got {len(seed)}")
    if not variance >= 0.0 or not np.isfinite(variance):
        raise ValueError(f"the noise variance must be finite and >= 0, got {variance}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if variance == 0.0:
        return np.zeros(num_classes, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    rate = variance / 2.0
    return rng.poisson(rate, num_classes).astype(np.int64) - rng.poisson(rate, num_classes).astype(np.int64)
