"""Uniform sampling without replacement, as FedAvg."""

from __future__ import annotations

import numpy as np

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import ClientIds, ClientSelector, id_array, is_sorted


class RandomSelector(ClientSelector):
    def __init__(self, job_seed: int) -> None:
        self._job_seed = job_seed

    def select(self, round_index: int, feasible: ClientIds, count: int) -> list[int]:
        # The draw indexes the feasible ids in ascending order (repeats kept), so it does not depend on their order.
        rng = numpy_rng(self._job_seed, round_index, "select")
        if not isinstance(feasible, np.ndarray):
            # A list stays a list: sorting one already in order is a single pass, cheaper than making an array of it.
            listed = sorted(feasible)
            chosen = rng.choice(len(listed), size=min(count, len(listed)), replace=False)
            return sorted(int(listed[index]) for index in chosen)
        pool = id_array(feasible)
        if not is_sorted(pool):
            pool = np.sort(pool)
        chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
        return sorted(pool[chosen].tolist())
