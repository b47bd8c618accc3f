"""The signal Auxo clusters clients by, and the two views of a cohort's signals the reward table uses.

A client's signal is its model update ``old - new``: every tensor flattened and concatenated in the model's tensor
order (the order of ``old``), of which the last ``len // grad_ratio`` values are kept (the last layers, which
separate data distributions best, at a fraction of the size) and stored as float16 to keep many clients' signals
small (Auxo's published code in FedScale, register_gradient).

Deliberate differences from upstream:
- differences are taken in float64 before the cast to float16 (upstream subtracts in each tensor's own dtype);
- a model with fewer values than ``grad_ratio`` is refused, where upstream's ``gradient[-0:]`` kept the whole update;
- ``centered`` and ``normalized`` work in float64: upstream kept float16 there, whose sums of squares overflow for
  updates with a norm above 256.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def client_signal(old: Mapping[str, torch.Tensor], new: Mapping[str, torch.Tensor], grad_ratio: int) -> np.ndarray:
    """The last ``1 / grad_ratio`` of ``old - new`` over all tensors, in ``old``'s order, as float16."""
    if grad_ratio < 1:
        raise ValueError(f"grad_ratio must be at least 1, got {grad_ratio}")
    if set(old) != set(new):
        missing = sorted(set(old) ^ set(new))
        raise ValueError(f"old and new weights must name the same tensors; they differ in {missing}")
    pieces = []
    for name, before in old.items():
        after = new[name]
        if tuple(before.shape) != tuple(after.shape):
            raise ValueError(f"tensor {name!r} has shape {tuple(before.shape)} before and {tuple(after.shape)} after")
        pieces.append((before.detach().cpu().double() - after.detach().cpu().double()).reshape(-1))
    flat = torch.cat(pieces).numpy() if pieces else np.zeros(0)
    kept = len(flat) // grad_ratio
    if kept == 0:
        raise ValueError(f"the model has {len(flat)} values, too few to keep 1/{grad_ratio} of them")
    return flat[-kept:].astype(np.float16)


def _matrix(signals: np.ndarray) -> np.ndarray:
    matrix = np.asarray(signals, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"signals must be a non-empty (clients, values) matrix, got shape {matrix.shape}")
    return matrix


def centered(signals: np.ndarray) -> np.ndarray:
    """Each client's signal minus the cohort's mean signal: what the clients share is removed, so their distances
    measure how they differ."""
    matrix = _matrix(signals)
    return matrix - matrix.mean(axis=0)


def normalized(centered_signals: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm (all-zero rows stay zero), so k-means on them compares directions: the
    cosine metric."""
    from sklearn.preprocessing import normalize  # scikit-learn takes seconds to import; only Auxo's jobs need it

    return normalize(_matrix(centered_signals), norm="l2", axis=1)
