"""Pure weighted-mean math over weight sets (state dicts)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedscale_halor.types import Weights

_BLOCK_ELEMENTS = 1 << 18  # 2 MiB of float64 accumulator


def require_same_layout(reference: Weights, candidate: Weights, candidate_name: str) -> None:
    """Raise a ValueError naming the first key that is missing, extra, or shaped differently in ``candidate``."""
    missing = [key for key in reference if key not in candidate]
    if missing:
        raise ValueError(f"{candidate_name} lacks key {missing[0]!r}")
    extra = [key for key in candidate if key not in reference]
    if extra:
        raise ValueError(f"{candidate_name} has unexpected key {extra[0]!r}")
    for key, tensor in reference.items():
        if candidate[key].shape != tensor.shape:
            raise ValueError(f"{candidate_name} has shape {tuple(candidate[key].shape)} for key {key!r}, "
                             f"expected {tuple(tensor.shape)}")


def _is_averaged(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() or tensor.is_complex()


def weighted_average(weight_sets: Sequence[Weights], coefficients: Sequence[float]) -> dict[str, torch.Tensor]:
    """The coefficient-weighted mean of ``weight_sets``, key by key, in the key order of the first set.

    Coefficients are normalized to sum to 1. Floating tensors are accumulated in float64 (complex128 for complex
    ones), in the order given, and cast back to the first set's dtype. Integer and boolean tensors are counters or
    flags, not weights: a mean of BatchNorm's ``num_batches_tracked`` would be meaningless and could not be stored
    exactly, so they take the element-wise maximum.
    """
    if not weight_sets:
        raise ValueError("cannot average an empty list of weight sets")
    if len(weight_sets) != len(coefficients):
        raise ValueError(f"{len(weight_sets)} weight sets but {len(coefficients)} coefficients")
    if any(coefficient < 0 for coefficient in coefficients):
        raise ValueError(f"coefficients must be non-negative, got {list(coefficients)}")
    total = float(sum(coefficients))
    if total <= 0:
        raise ValueError("cannot average weight sets whose coefficients sum to zero")
    reference = weight_sets[0]
    for index, weights in enumerate(weight_sets[1:], start=1):
        require_same_layout(reference, weights, f"weight set {index}")

    normalized = [float(coefficient) / total for coefficient in coefficients]
    averaged: dict[str, torch.Tensor] = {}
    for key, first in reference.items():
        if _is_averaged(first):
            averaged[key] = _blocked_weighted_sum([weights[key] for weights in weight_sets], normalized, first)
        else:
            maximum = first.detach().clone()
            for weights in weight_sets[1:]:
                maximum = torch.maximum(maximum, weights[key].to(device=first.device, dtype=first.dtype))
            averaged[key] = maximum
    return averaged


def _blocked_weighted_sum(tensors: Sequence[torch.Tensor], shares: Sequence[float],
                          like: torch.Tensor) -> torch.Tensor:
    """Σ share_i · tensor_i accumulated in double precision, element by element in the order given.

    The sum runs over one block of elements at a time, so that the wide accumulator stays in cache while every
    tensor adds into it: the same additions in the same order as a whole-tensor loop, at a fraction of the memory
    traffic (a model's largest layer in float64 is far bigger than any cache).
    """
    wide_dtype = torch.complex128 if like.is_complex() else torch.float64
    flats = [tensor.to(device=like.device).reshape(-1) for tensor in tensors]
    total = torch.empty(like.numel(), dtype=wide_dtype, device=like.device)
    for start in range(0, like.numel(), _BLOCK_ELEMENTS):
        block = total[start:start + _BLOCK_ELEMENTS]
        block.zero_()
        for flat, share in zip(flats, shares, strict=True):
            block.add_(flat[start:start + _BLOCK_ELEMENTS], alpha=share)
    return total.to(like.dtype).reshape(like.shape)


def clone_weights(weights: Weights) -> dict[str, torch.Tensor]:
    """Independent copies, so that a returned model never aliases its input."""
    return {key: tensor.detach().clone() for key, tensor in weights.items()}
