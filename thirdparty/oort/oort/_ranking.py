"""Vectorized scores and rankings of the training selector that give, bit for bit, what Python's float arithmetic and
``sorted(..., reverse=True)`` give.

Elementwise +, -, *, /, min, max and sqrt are correctly rounded in numpy as in Python, so they are vectorized as they
are. ``np.power`` is not: its SIMD kernels differ from C's ``pow`` (which Python's ``**`` calls) in the last bit for a
share of the values, enough to reorder ties and change draws. The straggler penalty therefore goes through Python's
``pow``, on the clients it applies to only. Ranking a million unexplored clients that way would cost a second, so
there ``np.power`` only narrows the field: its values are within a few ulps of the exact ones, so every client that can
rank in the window is among those whose approximate prior is within a relative 1e-12 of the window's last one; those
are computed exactly and the choice is checked against the bound before it is used (else all are computed exactly).
"""

from __future__ import annotations

import itertools

import numpy as np

# Guards against division by zero for zero durations (see training_selector).
MIN_DURATION = 1e-4
# How far below the approximate window edge the exactly computed field reaches, and the error the check allows
# np.power (plus the product's rounding): a few ulps are ~1e-15; subnormal powers are covered by an absolute term.
_FIELD_MARGIN = 1e-12
_APPROX_RELATIVE_ERROR = 1e-14
_APPROX_ABSOLUTE_ERROR = 1e-300
# The window edge is estimated on every _STRIDE-th value first; this many window-lengths of clients are aimed for.
_STRIDE = 16
_FIELD_WINDOWS = 3


def python_pow(bases: np.ndarray, exponent: float) -> np.ndarray:
    """``[b ** exponent for b in bases]`` exactly as Python computes it."""
    return np.fromiter(map(pow, bases.tolist(), itertools.repeat(exponent)), dtype=np.float64, count=len(bases))


def straggler_penalties(durations: np.ndarray, preferred: float, exponent: float) -> np.ndarray:
    """1.0 at or below the preferred duration, else ``(preferred / max(MIN_DURATION, duration)) ** exponent``."""
    penalties = np.ones(len(durations), dtype=np.float64)
    slow = durations > preferred
    if slow.any():
        penalties[slow] = python_pow(preferred / np.maximum(MIN_DURATION, durations[slow]), exponent)
    return penalties


def descending(values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` from largest to smallest, equal values in their order: ``sorted(reverse=True)``."""
    return np.argsort(-values, kind="stable")


def kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


def top_window(rewards: np.ndarray, durations: np.ndarray, eligible: np.ndarray, preferred: float, exponent: float,
               window: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``window`` eligible clients of largest prior ``reward × straggler penalty``, ranked as ``sorted(...,
    reverse=True)`` over the eligible clients in row order ranks them, and their exact priors.

    ``rewards`` and ``durations`` are columns over all rows; ``eligible`` a boolean mask with more than ``window``
    rows set."""
    approx = _approximate_priors(rewards, durations, eligible, preferred, exponent)
    edge = _approximate_edge(approx, window)
    threshold = edge - _FIELD_MARGIN * abs(edge)
    field = np.flatnonzero(approx >= threshold)
    if len(field) >= window:
        priors = rewards[field] * straggler_penalties(durations[field], preferred, exponent)
        last = kth_largest(priors, window)
        if _nothing_outside_reaches(approx, threshold, len(field), last, rewards):
            return _ranked(field, priors, last, window)
    field = np.flatnonzero(eligible)
    priors = rewards[field] * straggler_penalties(durations[field], preferred, exponent)
    return _ranked(field, priors, kth_largest(priors, window), window)


def _approximate_priors(rewards: np.ndarray, durations: np.ndarray, eligible: np.ndarray, preferred: float,
                        exponent: float) -> np.ndarray:
    """Priors within a few ulps (np.power), -inf for the clients that are not eligible."""
    # Whole-column passes into one buffer: masked ufuncs (where=) would be several times slower. The clients at or
    # below the preferred duration are overwritten after, so what these passes give them (inf, nan) does not matter.
    approx = np.maximum(MIN_DURATION, durations)
    with np.errstate(all="ignore"):
        np.divide(preferred, approx, out=approx)
        np.power(approx, exponent, out=approx)
        np.multiply(rewards, approx, out=approx)
    np.putmask(approx, durations <= preferred, rewards)
    np.putmask(approx, ~eligible, -np.inf)
    return approx


def _approximate_edge(approx: np.ndarray, window: int) -> float:
    """A value near, and usually below, the ``window``-th largest of ``approx``, estimated on a strided sample so that
    about _FIELD_WINDOWS windows of values lie above it (any value will do: the result is checked)."""
    sample = approx[::_STRIDE]
    wanted = _FIELD_WINDOWS * window // _STRIDE + 1
    edge = kth_largest(sample, wanted) if wanted < len(sample) else -np.inf
    return edge if np.isfinite(edge) else kth_largest(approx, window)


def _nothing_outside_reaches(approx: np.ndarray, threshold: float, field_size: int, last: float,
                             rewards: np.ndarray) -> bool:
    """Whether every client outside the field (approximate prior below ``threshold``) has an exact prior below
    ``last``: exact ≤ approx + relative error + absolute error (subnormal powers, scaled by the largest reward)."""
    absolute = _APPROX_ABSOLUTE_ERROR * max(float(rewards.max()), -float(rewards.min()), 0.0)
    reach = last - absolute
    # The largest approximate prior x with x + _APPROX_RELATIVE_ERROR * |x| < last - absolute, for either sign of x.
    safe_below = reach / (1.0 + _APPROX_RELATIVE_ERROR) if reach > 0 else reach / (1.0 - _APPROX_RELATIVE_ERROR)
    # Strictly below `safe_below` is safe; the rounding of that division is covered by the margin in the errors.
    if safe_below >= threshold:
        return True
    return int(np.count_nonzero(approx >= safe_below)) == field_size


def _ranked(field: np.ndarray, priors: np.ndarray, last: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``window`` of ``field`` by descending prior, ties in field order, given the window's last prior."""
    above = np.flatnonzero(priors > last)
    above = above[descending(priors[above])]
    ties = np.flatnonzero(priors == last)[: window - len(above)]
    chosen = np.concatenate([above, ties])
    return field[chosen], priors[chosen]
