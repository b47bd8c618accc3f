"""The global label distribution: the normalized sum of the label histograms of the last few protocol rounds, or
of every client's once (the exact distribution, from one run of the protocol in groups)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedscale_halor.halor.ring import MINIMUM_RING_SIZE
from fedscale_halor.seeding import numpy_rng

logger = logging.getLogger(__name__)

DEFAULT_HISTORY = 5


@dataclass(frozen=True)
class KeptRound:
    """A round whose histogram could not be computed, so the previous distribution carried over."""

    round_index: int
    reason: str


@dataclass(frozen=True)
class _WindowEntry:
    round_index: int
    histogram: np.ndarray


def _checked_histogram(name: str, values: np.ndarray, num_classes: int) -> np.ndarray:
    return checked_class_vector(name, values, num_classes, unit="count")


def checked_class_vector(name: str, values: np.ndarray, num_classes: int, unit: str,
                         allow_negative: bool = False) -> np.ndarray:
    """``values`` as float64 after checking it is one finite, non-negative number (a ``unit``) per class; with
    ``allow_negative``, any finite number (a noisy sum)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != num_classes:
        raise ValueError(f"{name} must be a vector of {num_classes} class {unit}s, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    as_float = array.astype(np.float64)
    if not np.all(np.isfinite(as_float)):
        raise ValueError(f"{name} contains NaN or infinity: {array.tolist()}")
    if not allow_negative and np.any(as_float < 0):
        raise ValueError(f"{name} contains negative {unit}s: {array.tolist()}")
    return as_float


class GlobalDistribution:
    """Sliding window over the summed label histograms H of the last ``history`` rounds in which the protocol ran.

    Rounds passed to ``keep`` (the protocol could not run) leave the window untouched: they neither add a histogram
    nor push an old one out, so the distribution stays what it was. Round indices must increase across ``update``
    and ``keep`` calls, which catches a round reported twice.
    """

    def __init__(self, num_classes: int, history: int = DEFAULT_HISTORY) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if history < 1:
            raise ValueError(f"history must be at least 1 round, got {history}")
        self._num_classes = num_classes
        self._history = history
        self._window: deque[_WindowEntry] = deque(maxlen=history)
        self._kept: list[KeptRound] = []
        self._last_round: int | None = None

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def history(self) -> int:
        return self._history

    @property
    def rounds_in_window(self) -> tuple[int, ...]:
        """The rounds whose histograms make up the current distribution, oldest first."""
        return tuple(entry.round_index for entry in self._window)

    @property
    def kept_rounds(self) -> tuple[KeptRound, ...]:
        return tuple(self._kept)

    def window(self) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """(round, summed histogram) of each round in the window, oldest first: what a checkpoint keeps."""
        return tuple((entry.round_index, tuple(int(count) for count in entry.histogram)) for entry in self._window)

    def update(self, round_index: int, histogram_sum: np.ndarray, signed: bool = False) -> None:
        """Adds the round's summed histogram; the oldest one leaves once the window holds ``history`` rounds.

        ``signed``: the sum carries noise (docs/halor.md, "Privacy over a whole run"), so a class may be negative;
        current() clips the window's class totals at zero.
        """
        self._advance_to(round_index)
        histogram = checked_class_vector("histogram_sum", histogram_sum, self._num_classes, unit="count",
                                         allow_negative=signed)
        if not signed and histogram.sum() <= 0:
            # An all-zero sum would make the window's normalization meaningless for a round that claims to have run.
            raise ValueError(f"histogram_sum of round {round_index} counts no sample; report the round with keep()")
        histogram.setflags(write=False)
        self._window.append(_WindowEntry(round_index, histogram))

    def keep(self, round_index: int, reason: str) -> None:
        """Records a round without a histogram; the previous distribution stays in force."""
        self._advance_to(round_index)
        self._kept.append(KeptRound(round_index, reason))
        logger.info("round %d: global label distribution unchanged (%s)", round_index, reason)

    def current(self) -> np.ndarray | None:
        """The normalized sum of the window (a fresh array summing to 1), or None before the first update (or while
        noise leaves no class total above zero)."""
        if not self._window:
            return None
        # Noisy sums can make a class total negative; clipping it to zero is post-processing, so no privacy is lost.
        total = np.clip(np.sum([entry.histogram for entry in self._window], axis=0), 0.0, None)
        mass = total.sum()
        return None if mass <= 0 else total / mass

    def _advance_to(self, round_index: int) -> None:
        if self._last_round is not None and round_index <= self._last_round:
            raise ValueError(f"round_index {round_index} does not come after round {self._last_round}, "
                             f"which was already reported")
        self._last_round = round_index


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ½·Σ|p − q| in [0, 1]; p and q may be counts or probabilities (each is normalized)."""
    p_array = np.asarray(p)
    q_array = np.asarray(q)
    if p_array.ndim != 1 or p_array.shape != q_array.shape:
        raise ValueError(f"p and q must be vectors of the same length, got shapes {p_array.shape} and {q_array.shape}")
    normalized = []
    for name, array in (("p", p_array), ("q", q_array)):
        checked = _checked_histogram(name, array, array.shape[0])
        mass = checked.sum()
        if mass <= 0:
            raise ValueError(f"{name} has no mass: {array.tolist()}")
        normalized.append(checked / mass)
    return float(0.5 * np.abs(normalized[0] - normalized[1]).sum())


def protocol_groups(client_ids: Sequence[int], group_size: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """Every client in exactly one group of ``group_size`` (ids ascending within a group), each group one ring of
    the protocol run that gives the exact distribution.

    The clients are shuffled by a generator seeded from ``seed`` (the job seed) alone, so who shares a ring follows
    from the job, as the ring order does, and any party can recompute it. A last group smaller than a ring's minimum
    joins the group before it, so every group can hide its members' histograms; with fewer clients than that in all,
    the one group cannot form a sum.
    """
    if group_size < MINIMUM_RING_SIZE:
        raise ValueError(f"group_size must be at least {MINIMUM_RING_SIZE} (a ring's minimum), got {group_size}")
    ids = sorted(int(client) for client in client_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("client_ids must be distinct")
    if not ids:
        return ()
    shuffled = numpy_rng(seed, 0, "halor-groups").permutation(np.array(ids, dtype=np.int64)).tolist()
    groups = [shuffled[start:start + group_size] for start in range(0, len(shuffled), group_size)]
    if len(groups) > 1 and len(groups[-1]) < MINIMUM_RING_SIZE:
        groups[-2].extend(groups.pop())
    return tuple(tuple(sorted(group)) for group in groups)
