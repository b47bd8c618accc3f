"""Uniform sampling without replacement, as FedAvg."""

from __future__ import annotations

from collections.abc import Sequence

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import ClientSelector


class RandomSelector(ClientSelector):
    def __init__(self, job_seed: int) -> None:
        self._job_seed = job_seed

    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        pool = sorted(feasible)
        rng = numpy_rng(self._job_seed, round_index, "select")
        chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
        return sorted(pool[i] for i in chosen)
