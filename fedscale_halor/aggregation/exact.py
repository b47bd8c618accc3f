"""An exact sum of coefficient x tensor whose result depends neither on the order of the terms nor on their grouping.

Why: the aggregator's mean must be the same whichever executor trained which client and in whatever order the
updates arrive; with a float64 running sum that held only if the terms were added in one fixed order. An exact sum
makes the order irrelevant, and lets partial sums (of a chunk of clients, on an executor) be merged exactly.

The grid. Each term is one element of one update, x = fl(coefficient x w) in float64; it is quantised once, to the
fixed grid 2^-63 (``GRID_BITS`` = ``FRACTION_BITS`` + ``LOW_BITS`` = 20 + 43), into the integer

    q = round_half_even(x * 2^63)

and the sum Q of the q is kept exactly, in two limbs Q = HIGH * 2^43 + LOW. Step by step, with a = x * 2^20:

1. x is exact for float32 (or narrower) w and an integral coefficient below 2^29 (24 + 29 bits fit float64's 53);
   any other coefficient (a staleness weight) rounds it once, the same way whatever the order. It is computed as
   fl(w x (coefficient x 2^20)), which is fl(coefficient x w) x 2^20 exactly unless the product is subnormal, where
   either value quantises to q = 0.
2. hi = round_half_even(a) and r = a - hi are exact: |r| <= 1/2; if |a| < 1/2 then hi = 0 and r = a, otherwise hi
   lies within a factor of two of a (Sterbenz). (Rounding down would not do: a tiny negative a would leave
   r = 1 - tiny, which float64 cannot hold; rounding to nearest, like truncation, keeps tiny values exact.)
3. lo = round_half_even(r * 2^43), |lo| <= 2^42: r * 2^43 is exact, and hi * 2^43 + lo = q because hi * 2^43 is an
   even integer, so ties break alike. This rounding is the only quantisation: at most 2^-64 per term, none for
   terms on the grid; elements below 2^-64 in magnitude vanish.
4. HIGH += hi and LOW += lo are additions of integers held in float64 lanes, exact while every result stays within
   2^53: LOW is carried into HIGH (carry = floor(LOW / 2^43), exact) at least every ``CARRY_EVERY`` = 1024 adds, so
   |LOW| < 2^43 + 1024 * 2^42 < 2^53; HIGH is bounded by the sum of ceil(max |a|) + 2 over its terms (the 2 covers
   the carries), and before that bound passes 2^53 HIGH moves into an int64 reservoir (an exact conversion).
5. The total of those bounds is kept below 2^62 (checked for every term and every merge), so the reservoir cannot
   overflow: every update must keep |coefficient x weight| below 2^32 in every element (``TERM_RANGE_BITS``), and
   the sum over the updates of each one's largest |coefficient x weight| must stay below 2^42 (``SUM_RANGE_BITS``).
   Beyond either, ``ValueError`` names the update.

Integer addition is associative and commutative, so once LOW is carried into [0, 2^43) the limbs are
(floor(Q / 2^43), Q mod 2^43): the same for every order of adds and every grouping by ``merge``.

The limbs are float64 rather than int64 because torch's CPU kernels add float64 about twice as fast as int64 and
the split needs no float-to-integer conversion; int64 appears only in the reservoir and in ``state``.

Reading: value = fl(fl(HIGH + LOW * 2^-43) * 2^-20), rounded once while |HIGH| < 2^53, a function of the normalised
limbs only. NaN and infinite terms cannot live on a grid; they are set aside in a float64 tensor of their own
(inf + inf = inf, inf - inf = NaN, NaN + anything = NaN: order-independent too, NaNs written canonically), and an
element that received any of them reads as that value, as a float64 sum would give it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

FRACTION_BITS = 20  # HIGH counts units of 2^-20
LOW_BITS = 43  # LOW counts units of 2^-63
GRID_BITS = FRACTION_BITS + LOW_BITS
TERM_RANGE_BITS = 32  # every |coefficient x weight| of an update stays below 2^32
SUM_RANGE_BITS = 42  # the sum over updates of their largest |coefficient x weight| stays below 2^42
CARRY_EVERY = 1024
BLOCK_ELEMENTS = 1 << 18  # 2 MiB float64 blocks: the work of one add stays in cache

_FLOAT_LIMIT = 1 << 53  # integers up to here are exact in float64
_SUM_LIMIT = 1 << (SUM_RANGE_BITS + FRACTION_BITS)  # the bound on |HIGH| in units of 2^-20: 2^62 < int64's 2^63
_TERM_LIMIT = float(1 << (TERM_RANGE_BITS + FRACTION_BITS))  # max |a| of one term, 2^52


class Scratch:
    """Two float64 blocks per device reused by every add, so that an add allocates nothing; views of them are kept
    per size, since slicing them anew at every add cost a small model's client more than the arithmetic."""

    def __init__(self) -> None:
        self._blocks: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._views: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def blocks(self, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Two float64 blocks of exactly ``min(size, BLOCK_ELEMENTS)`` elements (at least one)."""
        size = min(max(size, 1), BLOCK_ELEMENTS)
        views = self._views.get((device, size))
        if views is not None:
            return views
        held = self._blocks.get(device)
        if held is None or held[0].numel() < size:
            held = self._blocks[device] = (torch.empty(size, dtype=torch.float64, device=device),
                                           torch.empty(size, dtype=torch.float64, device=device))
            self._views = {key: value for key, value in self._views.items() if key[0] != device}
        views = self._views[(device, size)] = (held[0][:size], held[1][:size])
        return views


@dataclass(frozen=True)
class Term:
    """One checked term, ready to be added: its scale (coefficient x 2^20) and its bound (ceil(max |a|) + 2)."""

    flat: torch.Tensor
    scale: float
    bound: int
    has_specials: bool


def _exponent(value: float) -> int:
    """k with 2^k <= value < 2^(k + 1)."""
    return math.frexp(value)[1] - 1


def _peak(flat: torch.Tensor) -> tuple[float, bool]:
    """max |w| over the finite elements, and whether any element is NaN or infinite."""
    if flat.numel() == 0:
        return 0.0, False
    low, high = torch.aminmax(flat)
    peak = max(-float(low), float(high))
    if math.isfinite(peak):
        return peak, False
    finite = torch.isfinite(flat)
    return float(flat.abs().masked_fill(~finite, 0).max()), True


class ExactSum:
    """The exact sum of coefficient x tensor for one flat floating tensor of ``numel`` elements (see the module)."""

    def __init__(self, numel: int, device: torch.device, scratch: Scratch) -> None:
        self.numel = numel
        self.device = device
        self._scratch = scratch
        self._high = torch.zeros(numel, dtype=torch.float64, device=device)
        self._low = torch.zeros(numel, dtype=torch.float64, device=device)
        self._reservoir: torch.Tensor | None = None  # int64, only once HIGH's bound passed 2^53
        self._special: torch.Tensor | None = None  # float64, only once a NaN or infinite term came
        self.bound = 0  # sum over the terms of ceil(max |a|) + 2: |HIGH + reservoir| <= bound, in units of 2^-20
        self._float_bound = 0  # |HIGH| <= this, since the last move into the reservoir
        self._pending = 0  # adds since LOW was last carried

    # adding ---------------------------------------------------------------------------------------------------
    def check(self, flat: torch.Tensor, coefficient: float, name: str) -> Term | None:
        """The term coefficient x ``flat``, checked against the range (None when it is exactly zero); nothing is
        added yet, so that a caller can check every tensor of an update before adding any."""
        if flat.numel() != self.numel:
            raise ValueError(f"{name} has {flat.numel()} elements, the sum {self.numel}")
        if coefficient == 0:
            return None
        scale = coefficient * 2.0**FRACTION_BITS
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"{name}: coefficient {coefficient} is outside the exact fold's range")
        peak, has_specials = _peak(flat)
        if peak == 0 and not has_specials:
            return None
        peak_a = peak * scale
        if not peak_a < _TERM_LIMIT:  # NaN-safe
            reach = peak_a * 2.0**-FRACTION_BITS
            shown = f"2^{_exponent(reach)}" if math.isfinite(reach) else "infinity"
            raise ValueError(f"{name}: |coefficient x weight| reaches {shown}, beyond the exact fold's range "
                             f"(below 2^{TERM_RANGE_BITS} per update)")
        bound = math.ceil(peak_a) + 2
        if self.bound + bound > _SUM_LIMIT:
            raise ValueError(self._sum_range_message(name, self.bound + bound))
        return Term(flat, scale, bound, has_specials)

    def add(self, term: Term) -> None:
        """Add a term from ``check`` (exactly)."""
        if self._float_bound + term.bound > _FLOAT_LIMIT:
            self._flush()
        a_block, hi_block = self._scratch.blocks(self.numel, self.device)
        if self.numel <= BLOCK_ELEMENTS:  # one block: no slicing at all
            self._add_span(term, term.flat, a_block, hi_block, self._high, self._low, 0)
        else:
            for start in range(0, self.numel, BLOCK_ELEMENTS):
                stop = min(start + BLOCK_ELEMENTS, self.numel)
                self._add_span(term, term.flat[start:stop], a_block[:stop - start], hi_block[:stop - start],
                               self._high[start:stop], self._low[start:stop], start)
        self.bound += term.bound
        self._float_bound += term.bound
        self._pending += 1
        if self._pending >= CARRY_EVERY:
            self._carry()

    def _add_span(self, term: Term, flat: torch.Tensor, a: torch.Tensor, hi: torch.Tensor, high: torch.Tensor,
                  low: torch.Tensor, start: int) -> None:
        """Steps 1-4 of the module for the elements ``start`` .. ``start + len(flat)``."""
        a.copy_(flat)
        a.mul_(term.scale)
        if term.has_specials:
            self._set_aside(a, start, start + a.numel())
        torch.round(a, out=hi)  # half to even
        a.sub_(hi)
        high.add_(hi)
        a.mul_(2.0**LOW_BITS).round_()
        low.add_(a)

    def _set_aside(self, a: torch.Tensor, start: int, stop: int) -> None:
        bad = ~torch.isfinite(a)
        if not bool(bad.any()):
            return
        if self._special is None:
            self._special = torch.zeros(self.numel, dtype=torch.float64, device=self.device)
        special = self._special[start:stop]
        special.add_(torch.where(bad, a, 0.0))
        special.masked_fill_(torch.isnan(special), math.nan)  # one NaN, whatever the payloads met on the way
        a.masked_fill_(bad, 0.0)

    # normal form ----------------------------------------------------------------------------------------------
    def _carry(self) -> None:
        """LOW into [0, 2^43), its carry into HIGH: the value is unchanged."""
        if self._pending == 0:
            return
        carry_block, _ = self._scratch.blocks(self.numel, self.device)
        for start in range(0, self.numel, BLOCK_ELEMENTS):
            stop = min(start + BLOCK_ELEMENTS, self.numel)
            low, carry = self._low[start:stop], carry_block[:stop - start]
            torch.mul(low, 2.0**-LOW_BITS, out=carry).floor_()
            self._high[start:stop].add_(carry)
            low.sub_(carry.mul_(2.0**LOW_BITS))
        self._pending = 0

    def _flush(self) -> None:
        """HIGH into the int64 reservoir; LOW is carried first, so that no later carry stems from earlier terms."""
        self._carry()
        if self._reservoir is None:
            self._reservoir = torch.zeros(self.numel, dtype=torch.int64, device=self.device)
        for start in range(0, self.numel, BLOCK_ELEMENTS):
            stop = min(start + BLOCK_ELEMENTS, self.numel)
            self._reservoir[start:stop].add_(self._high[start:stop].to(torch.int64))
        self._high.zero_()
        self._float_bound = 0

    # merging --------------------------------------------------------------------------------------------------
    def check_merge(self, other: ExactSum, name: str) -> None:
        if other.numel != self.numel:
            raise ValueError(f"{name} has {other.numel} elements, the sum {self.numel}")
        if self.bound + other.bound > _SUM_LIMIT:
            raise ValueError(self._sum_range_message(name, self.bound + other.bound))

    def merge(self, other: ExactSum) -> None:
        """Add ``other``'s sum (exactly; ``check_merge`` first). ``other`` keeps its value."""
        self._carry()
        other._carry()
        extra = other._float_bound + 2  # the 2: the carry of LOW + other's LOW
        if self._float_bound + extra > _FLOAT_LIMIT:
            self._flush()
        if extra > _FLOAT_LIMIT:
            self._add_to_reservoir(other._high.to(torch.int64))
            self._float_bound += 2
        else:
            self._high.add_(other._high.to(self.device))
            self._float_bound += extra
        if other._reservoir is not None:
            self._add_to_reservoir(other._reservoir.to(self.device))
        if other._special is not None:
            self._merge_special(other._special.to(self.device))
        self._low.add_(other._low.to(self.device))
        self._pending = 1
        self._carry()
        # no margin for that carry in the total: in normal form |HIGH| <= sum(|a| + 1) over the terms, within the
        # bound's ceil(max |a|) + 2 per term; so the bound is the same for every grouping
        self.bound += other.bound

    def _add_to_reservoir(self, values: torch.Tensor) -> None:
        if self._reservoir is None:
            self._reservoir = torch.zeros(self.numel, dtype=torch.int64, device=self.device)
        self._reservoir.add_(values)

    def _merge_special(self, special: torch.Tensor) -> None:
        if self._special is None:
            self._special = torch.zeros(self.numel, dtype=torch.float64, device=self.device)
        self._special.add_(special)
        self._special.masked_fill_(torch.isnan(self._special), math.nan)

    def clone(self) -> ExactSum:
        high, low, bound, special = self.state()
        return ExactSum.from_state(high, low, bound, special, self.device, self._scratch, "the sum")

    # reading --------------------------------------------------------------------------------------------------
    def quotient_into(self, out: torch.Tensor, divisor: float) -> None:
        """out = sum / divisor, block by block (out: flat, any floating dtype, on the sum's device)."""
        self._carry()
        value_block, _ = self._scratch.blocks(self.numel, self.device)
        for start in range(0, self.numel, BLOCK_ELEMENTS):
            stop = min(start + BLOCK_ELEMENTS, self.numel)
            value = value_block[:stop - start]
            if self._reservoir is None:
                value.copy_(self._high[start:stop])
            else:
                value.copy_(self._reservoir[start:stop] + self._high[start:stop].to(torch.int64))
            value.add_(self._low[start:stop], alpha=2.0**-LOW_BITS)
            value.mul_(2.0**-FRACTION_BITS).div_(divisor)
            if self._special is not None:
                special = self._special[start:stop]
                value = torch.where(special != 0, special, value)  # NaN != 0 holds
            out[start:stop] = value

    # plain tensors --------------------------------------------------------------------------------------------
    def state(self) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor | None]:
        """(HIGH, LOW) as int64 in normal form (LOW in [0, 2^43)), the bound, and the set-aside NaN/inf terms."""
        self._carry()
        high = self._high.to(torch.int64)
        if self._reservoir is not None:
            high += self._reservoir
        special = None if self._special is None else self._special.clone()
        return high, self._low.to(torch.int64), self.bound, special

    @classmethod
    def from_state(cls, high: torch.Tensor, low: torch.Tensor, bound: int, special: torch.Tensor | None,
                   device: torch.device, scratch: Scratch, name: str) -> ExactSum:
        """The sum ``state`` gave; what would break the exactness argument is refused, with ``name``."""
        for label, tensor in (("high", high), ("low", low)):
            if tensor.dtype != torch.int64 or tensor.dim() != 1:
                raise ValueError(f"{name}: the {label} limb must be a flat int64 tensor, got {tensor.dtype} "
                                 f"of shape {tuple(tensor.shape)}")
        if low.numel() != high.numel():
            raise ValueError(f"{name}: {high.numel()} high limbs but {low.numel()} low limbs")
        if not 0 <= bound <= _SUM_LIMIT:
            raise ValueError(f"{name}: bound {bound} is outside [0, 2^{SUM_RANGE_BITS + FRACTION_BITS}]")
        if high.numel() and int(high.abs().max()) > bound:
            raise ValueError(f"{name}: the high limb exceeds its bound {bound}")
        if low.numel() and (int(low.min()) < 0 or int(low.max()) >= 1 << LOW_BITS):
            raise ValueError(f"{name}: the low limb is not in [0, 2^{LOW_BITS})")
        if special is not None:
            special = special.to(device=device, dtype=torch.float64).clone()
            if special.shape != high.shape or bool((torch.isfinite(special) & (special != 0)).any()):
                raise ValueError(f"{name}: the set-aside terms must be 0, infinite or NaN, one per element")
        result = cls(high.numel(), device, scratch)
        if bound <= _FLOAT_LIMIT:  # |high| <= bound: exact in float64
            result._high = high.to(device=device, dtype=torch.float64)
            result._float_bound = bound
        else:
            result._reservoir = high.to(device).clone()
        result._low = low.to(device=device, dtype=torch.float64)
        result._special = special
        result.bound = bound
        return result

    @staticmethod
    def _sum_range_message(name: str, bound: int) -> str:
        return (f"{name}: the sum of |coefficient x weight| over the updates folded reaches "
                f"2^{bound.bit_length() - 1 - FRACTION_BITS}, beyond the exact fold's range "
                f"(below 2^{SUM_RANGE_BITS})")


class CoefficientTotal:
    """The sum of the coefficients, exact and order-independent: integral ones (sample counts, or 1) are summed as
    a Python int; the others (a sample count times a staleness weight) are kept and summed as exact fractions, so
    that ``value`` is the exact total correctly rounded to float64."""

    def __init__(self) -> None:
        self._integral = 0
        self._fractional: list[float] = []

    def add(self, coefficient: float) -> None:
        if coefficient.is_integer() and abs(coefficient) < _FLOAT_LIMIT:
            self._integral += int(coefficient)
        else:
            self._fractional.append(coefficient)

    def merge(self, other: CoefficientTotal) -> None:
        self._integral += other._integral
        self._fractional.extend(other._fractional)

    def value(self) -> float:
        if not self._fractional:
            return float(self._integral)
        return float(sum(map(Fraction, self._fractional), Fraction(self._integral)))

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The integral part (int64 scalar) and the other coefficients (float64, sorted: one form per total)."""
        return (torch.tensor(self._integral, dtype=torch.int64),
                torch.tensor(sorted(self._fractional), dtype=torch.float64))

    @classmethod
    def from_state(cls, integral: torch.Tensor, fractional: torch.Tensor) -> CoefficientTotal:
        if integral.dtype != torch.int64 or integral.dim() != 0:
            raise ValueError(f"the integral coefficient total must be an int64 scalar, got {integral.dtype} of "
                             f"shape {tuple(integral.shape)}")
        if fractional.dtype != torch.float64 or fractional.dim() != 1:
            raise ValueError("the other coefficients must be a flat float64 tensor")
        values = [float(value) for value in fractional.tolist()]
        if int(integral) < 0 or any(not (math.isfinite(value) and value >= 0) for value in values):
            raise ValueError("coefficients must be finite and non-negative")
        total = cls()
        total._integral = int(integral)
        total._fractional = values
        return total
