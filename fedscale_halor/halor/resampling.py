"""Per-client resampling toward the global label distribution: how many samples of each class, then which ones.

Modes:
- ``under``: over the classes the client has, the pivot class c* = argmax g_c / n_c (first such class on ties) is kept
  whole, t_c* = n_c*, and every other class keeps t_c = min(n_c, floor(g_c / g_c* · n_c*)) samples. The floor rounds
  down so the client never claims more of a class than g allows; it uses a relative tolerance of 1e-9, so quotients
  that are whole numbers up to float error (0.3 / 0.1 · 1 = 2.9999999999999996) count as whole. Classes the client
  lacks stay 0; classes with g_c = 0 get 0. The pivot keeps at least one sample, so the result is never empty.
- ``over``: the client keeps its size N = Σ n_c, spread over its classes in proportion to g restricted to them:
  quotas N · g_c / Σ g (sum over the client's classes) are floored (same tolerance) and the samples left over go,
  one each, to the classes with the largest remainders (lowest class index on ties, remainders compared to 1e-9),
  so the counts sum exactly to N.
- ``off``: the client's own counts.

If g is zero on every class the client has, ``under`` and ``over`` fall back to the client's own counts: g carries
no information about that client, and dropping all its data would waste its round.
"""

from __future__ import annotations

import numpy as np

from fedscale_halor.halor.distribution import checked_class_vector

RESAMPLING_MODES = ("under", "over", "off")

_RELATIVE_TOLERANCE = 1e-9
_REMAINDER_DECIMALS = 9


def _check_mode(mode: str) -> None:
    if mode not in RESAMPLING_MODES:
        raise ValueError(f"mode must be one of {', '.join(RESAMPLING_MODES)}; got {mode!r}")


def _checked_whole_numbers(name: str, values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a vector of {what}, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinity: {array.tolist()}")
        if not np.all(array == np.floor(array)):
            raise ValueError(f"{name} must hold whole numbers ({what}): {array.tolist()}")
    elif not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers ({what}), got dtype {array.dtype}")
    if np.any(array < 0):
        raise ValueError(f"{name} contains negative values ({what} cannot be negative): {array.tolist()}")
    return array.astype(np.int64)


def _checked_distribution(name: str, values: np.ndarray, num_classes: int) -> np.ndarray:
    as_float = checked_class_vector(name, values, num_classes, unit="weight")
    if as_float.sum() <= 0:
        raise ValueError(f"{name} has no mass: {np.asarray(values).tolist()}")
    return as_float


def _tolerant_floor(values: np.ndarray) -> np.ndarray:
    return np.floor(values * (1.0 + _RELATIVE_TOLERANCE)).astype(np.int64)


def _undersampled(counts: np.ndarray, weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    present_classes = np.flatnonzero(present)
    ratios = weights[present_classes] / counts[present_classes]
    pivot = int(present_classes[np.argmax(ratios)])
    targets = np.zeros_like(counts)
    targets[present_classes] = _tolerant_floor(weights[present_classes] / weights[pivot] * counts[pivot])
    # Mathematically floor(g_c / g_c* · n_c*) <= n_c because c* maximizes g / n; the min guards float rounding
    # and the pivot is set explicitly for the same reason.
    targets = np.minimum(targets, counts)
    targets[pivot] = counts[pivot]
    return targets


def _oversampled(counts: np.ndarray, weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    restricted = np.where(present, weights, 0.0)
    quotas = total * restricted / restricted.sum()
    targets = np.minimum(_tolerant_floor(quotas), total)
    remainders = np.round(np.maximum(quotas - targets, 0.0), _REMAINDER_DECIMALS)
    # Leftovers go only to classes g gives weight among the client's own: an absent class cannot be drawn.
    remainders[restricted == 0] = -1.0
    leftover = total - int(targets.sum())
    if leftover < 0:
        raise AssertionError(f"over: rounded quotas {targets.tolist()} exceed the client's {total} samples")
    # A stable sort on −remainder puts equal remainders in class order.
    order = np.argsort(-remainders, kind="stable")
    targets[order[:leftover]] += 1
    return targets


def target_counts(class_counts: np.ndarray, global_distribution: np.ndarray, mode: str) -> np.ndarray:
    """Per-class sample counts (int64) the client trains on this round; the rules are in the module docstring."""
    _check_mode(mode)
    counts = _checked_whole_numbers("class_counts", class_counts, "per-class counts")
    weights = _checked_distribution("global_distribution", global_distribution, counts.shape[0])
    present = counts > 0
    if mode == "off" or not np.any(weights[present] > 0):
        return counts.copy()
    if mode == "under":
        return _undersampled(counts, weights, present)
    return _oversampled(counts, weights, present)


def resample_positions(labels_of_client: np.ndarray, targets: np.ndarray, mode: str,
                       rng: np.random.Generator) -> np.ndarray:
    """Positions into the client's own samples (int64, ascending, repeats adjacent) whose labels count ``targets``.

    ``under`` draws t_c distinct positions of class c; ``over`` does the same when t_c <= n_c and draws t_c
    positions with replacement when t_c > n_c; ``off`` returns every position. Classes are drawn in ascending
    class order from ``rng``, so the result is a function of the rng's state; the ascending order lets a
    memory-mapped store read the rows front to back (the trainer shuffles its batches anyway).
    """
    _check_mode(mode)
    labels = _checked_whole_numbers("labels_of_client", labels_of_client, "class labels")
    wanted = _checked_whole_numbers("targets", targets, "per-class counts")
    num_classes = wanted.shape[0]
    if labels.size and int(labels.max()) >= num_classes:
        raise ValueError(f"labels_of_client holds label {int(labels.max())}, but targets covers only "
                         f"{num_classes} classes")
    available = np.bincount(labels, minlength=num_classes)
    if mode == "off":
        if not np.array_equal(wanted, available):
            raise ValueError(f"off keeps every sample, so targets {wanted.tolist()} must equal the client's class "
                             f"counts {available.tolist()}")
        return np.arange(labels.size, dtype=np.int64)
    missing = np.flatnonzero((wanted > 0) & (available == 0))
    if missing.size:
        raise ValueError(f"targets asks for classes {missing.tolist()}, which the client does not have")
    if mode == "under":
        too_many = np.flatnonzero(wanted > available)
        if too_many.size:
            raise ValueError(f"under draws without replacement, but targets {wanted.tolist()} exceeds the client's "
                             f"class counts {available.tolist()} for classes {too_many.tolist()}")
    chosen: list[np.ndarray] = []
    for label in np.flatnonzero(wanted):
        class_positions = np.flatnonzero(labels == label)
        with_replacement = bool(wanted[label] > class_positions.size)
        chosen.append(rng.choice(class_positions, size=int(wanted[label]), replace=with_replacement))
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)
