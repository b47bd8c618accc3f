"""Per-round deterministic randomness: every random choice derives from (job seed, round, purpose)."""

from __future__ import annotations

import zlib

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


def torch_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
