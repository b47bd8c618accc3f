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

    Floating tensors are summed as coefficient x tensor in float64 (complex128 for complex ones), in the order
    given, divided by the sum of the coefficients and cast back to the first set's dtype. Integer and boolean
    tensors are counters or flags, not weights: a mean of BatchNorm's ``num_batches_tracked`` would be meaningless
    and could not be stored exactly, so they take the element-wise maximum.
    """
    if not weight_sets:
        raise ValueError("cannot average an empty list of weight sets")
    if len(weight_sets) != len(coefficients):
        raise ValueError(f"{len(weight_sets)} weight sets but {len(coefficients)} coefficients")
    if any(coefficient < 0 for coefficient in coefficients):
        raise ValueError(f"coefficients must be non-negative, got {list(coefficients)}")
    running = RunningWeightedMean(weight_sets[0])
    for index, (weights, coefficient) in enumerate(zip(weight_sets, coefficients, strict=True)):
        running.add(weights, coefficient, f"weight set {index}")
    averaged = running.mean()
    if averaged is None:
        raise ValueError("cannot average weight sets whose coefficients sum to zero")
    return averaged


class RunningWeightedMean:
    """``weighted_average`` one weight set at a time, so that each set can be dropped once added."""

    def __init__(self, reference: Weights) -> None:
        self._reference = reference
        self._sums: dict[str, torch.Tensor] = {}
        self._total = 0.0

    def add(self, weights: Weights, coefficient: float, name: str = "weight set") -> None:
        if coefficient < 0:
            raise ValueError(f"{name}: coefficients must be non-negative, got {coefficient}")
        require_same_layout(self._reference, weights, name)
        for key, like in self._reference.items():
            tensor = weights[key].to(device=like.device)
            if not _is_averaged(like):
                current = self._sums.get(key)
                self._sums[key] = tensor.to(like.dtype).clone() if current is None else torch.maximum(
                    current, tensor.to(like.dtype))
                continue
            if key not in self._sums:
                wide = torch.complex128 if like.is_complex() else torch.float64
                self._sums[key] = torch.zeros(like.numel(), dtype=wide, device=like.device)
            _blocked_add(self._sums[key], tensor.reshape(-1), coefficient)
        self._total += float(coefficient)

    def mean(self) -> dict[str, torch.Tensor] | None:
        """The mean so far, or None when nothing with a positive coefficient was added."""
        if self._total <= 0:
            return None
        return {key: _blocked_quotient(self._sums[key], self._total, like) if _is_averaged(like)
                else self._sums[key].clone() for key, like in self._reference.items()}


def _blocked_add(total: torch.Tensor, flat: torch.Tensor, coefficient: float) -> None:
    # one cache-sized block at a time: the float64 conversion of each block is reused at once instead of a whole
    # float64 copy of the tensor streaming through memory
    for start in range(0, flat.numel(), _BLOCK_ELEMENTS):
        total[start:start + _BLOCK_ELEMENTS].add_(flat[start:start + _BLOCK_ELEMENTS], alpha=coefficient)


def _blocked_quotient(total: torch.Tensor, divisor: float, like: torch.Tensor) -> torch.Tensor:
    """``(total / divisor)`` cast to ``like``'s dtype and shape, one block at a time: no whole-size wide temporary."""
    quotient = torch.empty(like.numel(), dtype=like.dtype, device=like.device)
    for start in range(0, like.numel(), _BLOCK_ELEMENTS):
        quotient[start:start + _BLOCK_ELEMENTS] = total[start:start + _BLOCK_ELEMENTS] / divisor
    return quotient.reshape(like.shape)


def clone_weights(weights: Weights) -> dict[str, torch.Tensor]:
    """Independent copies, so that a returned model never aliases its input."""
    return {key: tensor.detach().clone() for key, tensor in weights.items()}
