"""Pure weighted-mean math over weight sets (state dicts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from fedscale_halor.aggregation.exact import CoefficientTotal, ExactSum, Scratch, Term
from fedscale_halor.types import Weights


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

    Floating (and complex) tensors are summed as coefficient x tensor exactly on a fixed-point grid (``exact.py``),
    so the result does not depend on the order of the sets; the sum is divided by the sum of the coefficients and
    cast back to the first set's dtype. Integer and boolean tensors are counters or flags, not weights: a mean of
    BatchNorm's ``num_batches_tracked`` would be meaningless and could not be stored exactly, so they take the
    element-wise maximum.
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
    """``weighted_average`` one weight set at a time, so that each set can be dropped once added.

    The sums are exact (``exact.py``): any order of ``add`` calls, and any grouping of them into accumulators
    combined with ``merge``, gives the very same mean, bit for bit. ``state_dict`` / ``from_state_dict`` turn an
    accumulator into plain tensors and back (safetensors-compatible), so that a partial sum can travel.
    """

    def __init__(self, reference: Weights) -> None:
        self._reference = reference
        self._scratch = Scratch()
        self._sums: dict[str, ExactSum] = {}
        self._maxima: dict[str, torch.Tensor] = {}
        self._total = CoefficientTotal()

    def add(self, weights: Weights, coefficient: float, name: str = "weight set") -> None:
        coefficient = float(coefficient)
        if not coefficient >= 0:
            raise ValueError(f"{name}: coefficients must be non-negative, got {coefficient}")
        if not math.isfinite(coefficient):
            raise ValueError(f"{name}: coefficients must be finite, got {coefficient}")
        require_same_layout(self._reference, weights, name)
        # every tensor is checked against the exact sum's range before any is added: a refused update leaves the
        # accumulator as it was
        terms: list[tuple[ExactSum, Term]] = []
        maxima: dict[str, torch.Tensor] = {}
        for key, like in self._reference.items():
            tensor = weights[key].to(device=like.device)
            if not _is_averaged(like):
                current = self._maxima.get(key)
                tensor = tensor.to(like.dtype)
                maxima[key] = tensor.clone() if current is None else torch.maximum(current, tensor)
                continue
            total = self._sum_of(key, like)
            term = total.check(_real_flat(tensor, like, f"{name}, tensor {key!r}"), coefficient,
                               f"{name}, tensor {key!r}")
            if term is not None:
                terms.append((total, term))
        for total, term in terms:
            total.add(term)
        self._maxima.update(maxima)
        self._total.add(coefficient)

    def merge(self, other: RunningWeightedMean, name: str = "the partial sum") -> None:
        """Add everything ``other`` holds (exactly; ``other`` is left as it was)."""
        require_same_layout(self._reference, other._reference, name)
        for key, like in self._reference.items():
            if like.dtype != other._reference[key].dtype:
                raise ValueError(f"{name} has dtype {other._reference[key].dtype} for key {key!r}, expected "
                                 f"{like.dtype}")
        for key, theirs in other._sums.items():
            ours = self._sums.get(key)
            if ours is not None:
                ours.check_merge(theirs, f"{name}, tensor {key!r}")
        for key, theirs in other._sums.items():
            ours = self._sums.get(key)
            if ours is None:
                self._sums[key] = theirs.clone()
            else:
                ours.merge(theirs)
        for key, maximum in other._maxima.items():
            current = self._maxima.get(key)
            self._maxima[key] = maximum.clone() if current is None else torch.maximum(current, maximum)
        self._total.merge(other._total)

    @property
    def total(self) -> float:
        """The sum of the coefficients added, correctly rounded."""
        return self._total.value()

    def mean(self) -> dict[str, torch.Tensor] | None:
        """The mean so far, or None when nothing with a positive coefficient was added."""
        divisor = self._total.value()
        if divisor <= 0:
            return None
        return {key: self._quotient(key, like, divisor) if _is_averaged(like) else self._maxima[key].clone()
                for key, like in self._reference.items()}

    def _quotient(self, key: str, like: torch.Tensor, divisor: float) -> torch.Tensor:
        quotient = torch.empty(like.shape, dtype=like.dtype, device=like.device)
        real = torch.view_as_real(quotient) if like.is_complex() else quotient
        self._sums[key].quotient_into(real.reshape(-1), divisor)
        return quotient

    def _sum_of(self, key: str, like: torch.Tensor) -> ExactSum:
        total = self._sums.get(key)
        if total is None:
            total = self._sums[key] = ExactSum(_real_numel(like), like.device, self._scratch)
        return total

    # plain tensors --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The accumulator as plain tensors: per floating key its limbs ``high.<key>`` and ``low.<key>`` (int64, in
        normal form), ``bound.<key>`` (int64 scalar) and, when NaN or infinite terms came, ``special.<key>``; per
        integer key ``maximum.<key>``; and the coefficient total, exactly (``coefficients.integral``,
        ``coefficients.fractional``). The same updates, added and merged in any order and grouping, give the
        same tensors."""
        state: dict[str, torch.Tensor] = {}
        for key, total in self._sums.items():
            high, low, bound, special = total.state()
            state[_HIGH + key], state[_LOW + key] = high, low
            state[_BOUND + key] = torch.tensor(bound, dtype=torch.int64)
            if special is not None:
                state[_SPECIAL + key] = special
        state.update({_MAXIMUM + key: maximum.clone() for key, maximum in self._maxima.items()})
        state[_INTEGRAL], state[_FRACTIONAL] = self._total.state()
        return state

    @classmethod
    def from_state_dict(cls, reference: Weights, state: Mapping[str, torch.Tensor],
                        name: str = "the partial sum") -> RunningWeightedMean:
        """The accumulator ``state_dict`` gave, for weights laid out as ``reference``; anything else is refused."""
        running = cls(reference)
        if _INTEGRAL not in state or _FRACTIONAL not in state:
            raise ValueError(f"{name} lacks its coefficient total ({_INTEGRAL!r}, {_FRACTIONAL!r})")
        running._total = CoefficientTotal.from_state(state[_INTEGRAL], state[_FRACTIONAL])
        parts: dict[str, dict[str, torch.Tensor]] = {}
        for entry, tensor in state.items():
            if entry in (_INTEGRAL, _FRACTIONAL):
                continue
            prefix, _, key = entry.partition(".")
            if prefix + "." not in _PREFIXES or key not in reference:
                raise ValueError(f"{name} has unexpected entry {entry!r}")
            parts.setdefault(key, {})[prefix + "."] = tensor
        if running._total.value() > 0 and set(parts) != set(reference):
            missing = next(key for key in reference if key not in parts)
            raise ValueError(f"{name} has a positive coefficient total but no entries for {missing!r}")
        for key, part in parts.items():
            like = reference[key]
            if not _is_averaged(like):
                if set(part) != {_MAXIMUM} or part[_MAXIMUM].shape != like.shape:
                    raise ValueError(f"{name}: integer tensor {key!r} takes one maximum of shape "
                                     f"{tuple(like.shape)}")
                running._maxima[key] = part[_MAXIMUM].to(device=like.device, dtype=like.dtype).clone()
                continue
            if not {_HIGH, _LOW, _BOUND} <= set(part) or _MAXIMUM in part:
                raise ValueError(f"{name}: floating tensor {key!r} takes high, low and bound entries")
            high, low = part[_HIGH], part[_LOW]
            if high.numel() != _real_numel(like):
                raise ValueError(f"{name}: {key!r} has {high.numel()} limbs, expected {_real_numel(like)}")
            running._sums[key] = ExactSum.from_state(high, low, int(part[_BOUND]), part.get(_SPECIAL), like.device,
                                                     running._scratch, f"{name}, tensor {key!r}")
        return running


_HIGH, _LOW, _BOUND, _SPECIAL, _MAXIMUM = "high.", "low.", "bound.", "special.", "maximum."
_PREFIXES = (_HIGH, _LOW, _BOUND, _SPECIAL, _MAXIMUM)
_INTEGRAL, _FRACTIONAL = "coefficients.integral", "coefficients.fractional"


def _real_numel(like: torch.Tensor) -> int:
    """Elements of the sum: complex tensors are summed as their real and imaginary parts."""
    return like.numel() * (2 if like.is_complex() else 1)


def _real_flat(tensor: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    if like.is_complex():
        return torch.view_as_real(tensor.to(like.dtype).resolve_conj()).reshape(-1)
    if tensor.is_complex():
        raise ValueError(f"{name} is complex, the reference is {like.dtype}")
    return tensor.reshape(-1)


def clone_weights(weights: Weights) -> dict[str, torch.Tensor]:
    """Independent copies, so that a returned model never aliases its input."""
    return {key: tensor.detach().clone() for key, tensor in weights.items()}
