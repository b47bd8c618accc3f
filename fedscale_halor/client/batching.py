"""Mini-batch index schedules for local training."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def batch_indices(num_samples: int, batch_size: int, num_steps: int,
                  generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield ``num_steps`` index batches of ``min(batch_size, num_samples)`` samples each.

    Every pass over the data is a fresh permutation cut into whole batches; the remainder of a pass is left out (as
    FedScale's training loader does with ``drop_last``) so that every step sees a full batch, and the next pass
    reshuffles, so no sample is systematically skipped. A client smaller than a batch trains on all its samples at
    every step.
    """
    if num_samples <= 0:
        raise ValueError(f"cannot draw batches from {num_samples} samples")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    size = min(batch_size, num_samples)
    batches_per_pass = num_samples // size
    steps_done = 0
    while steps_done < num_steps:
        permutation = torch.randperm(num_samples, generator=generator)
        for batch in range(min(batches_per_pass, num_steps - steps_done)):
            yield permutation[batch * size:(batch + 1) * size]
            steps_done += 1
