"""Per-round deterministic randomness: every random choice derives from (job seed, round, purpose)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch


def _entropy(job_seed: int, round_index: int, purpose: str, extra: tuple[int, ...]) -> list[int]:
    return [int(job_seed) & 0xFFFFFFFF, int(round_index) & 0xFFFFFFFF, zlib.crc32(purpose.encode()), *extra]


def numpy_rng(job_seed: int, round_index: int, purpose: str, *extra: int) -> np.random.Generator:
    """A NumPy generator that depends only on its arguments."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(job_seed, round_index, purpose, extra)))


def derive_seed(job_seed: int, round_index: int, purpose: str, *extra: int) -> int:
    """A 63-bit integer seed (for torch generators or tasks sent over the wire)."""
    state = np.random.SeedSequence(_entropy(job_seed, round_index, purpose, extra)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def derive_seeds(job_seed: int, round_index: int, purpose: str, extras: Sequence[int]) -> list[int]:
    """``[derive_seed(job_seed, round_index, purpose, extra) for extra in extras]``, computed for all at once.

    Why: one ``SeedSequence`` costs ~30 us, so seeding each of a round's clients on its own cost a 1,000-client
    round 30 ms of the aggregator's critical path. This is numpy's seed-sequence hash (the mixing of
    ``SeedSequence.mix_entropy`` and ``generate_state``) run over arrays, one lane per extra; with four entropy words
    (the pool's size) it needs no loop over clients. Extras outside [0, 2^32) take the scalar path.
    """
    values = np.asarray(extras, dtype=np.int64)
    if values.ndim != 1 or (values.size and (values.min() < 0 or values.max() > 0xFFFFFFFF)):
        return [derive_seed(job_seed, round_index, purpose, int(extra)) for extra in extras]
    head = _entropy(job_seed, round_index, purpose, ())
    words = [np.full(values.size, word, dtype=np.uint32) for word in head] + [values.astype(np.uint32)]
    with np.errstate(over="ignore"):
        state = _generate_state(_mix_entropy(words), 2)
    high, low = state[0].astype(np.int64), state[1].astype(np.int64)
    return ((high << 31) ^ low).tolist()


# numpy's SeedSequence constants (numpy/random/bit_generator.pyx)
_INIT_A, _MULT_A = np.uint32(0x43B0D7E5), np.uint32(0x931E8875)
_INIT_B, _MULT_B = np.uint32(0x8B51F9DD), np.uint32(0x58F38DED)
_MIX_MULT_L, _MIX_MULT_R = np.uint32(0xCA01F9DD), np.uint32(0x4973F715)
_XSHIFT = np.uint32(16)


class _HashConstant:
    """The multiplier that every hashmix step advances: the same sequence for every lane."""

    def __init__(self, start: np.uint32, multiplier: np.uint32) -> None:
        self.value, self._multiplier = start, multiplier

    def hash(self, lanes: np.ndarray) -> np.ndarray:
        lanes = lanes ^ self.value
        self.value = np.uint32(self.value * self._multiplier)
        lanes = lanes * self.value
        return lanes ^ (lanes >> _XSHIFT)


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = _MIX_MULT_L * x - _MIX_MULT_R * y
    return result ^ (result >> _XSHIFT)


def _mix_entropy(words: list[np.ndarray]) -> list[np.ndarray]:
    """The pool of four words per lane, from exactly four entropy words per lane."""
    constant = _HashConstant(_INIT_A, _MULT_A)
    pool = [constant.hash(word) for word in words]
    for source in range(len(pool)):
        for target in range(len(pool)):
            if source != target:
                pool[target] = _mix(pool[target], constant.hash(pool[source]))
    return pool


def _generate_state(pool: list[np.ndarray], n_words: int) -> list[np.ndarray]:
    constant = _HashConstant(_INIT_B, _MULT_B)
    return [constant.hash(pool[index % len(pool)]) for index in range(n_words)]


def torch_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
