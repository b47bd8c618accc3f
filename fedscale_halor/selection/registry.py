"""YAML name -> selector builder.

The names are FedScale's and REFL's ``sample_mode`` values, ``random`` and ``oort``. REFL's availability priority is
not a sample mode of its own but a switch beside it, ``avail_priority`` (0 off; 1 and 2 differ only in whether the
sample mode or chance fills the rest of the round, the same thing for ``random``), so it is read here too.
"""

from __future__ import annotations

from collections.abc import Callable

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientSelector
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector


def oort_settings(job: JobConfig) -> OortSettings:
    """Oort's knobs from the job under Oort's own names; the seed is the job's ``sample_seed``."""
    return OortSettings(
        exploration_factor=job.exploration_factor, exploration_decay=job.exploration_decay,
        exploration_min=job.exploration_min, exploration_alpha=job.exploration_alpha,
        round_threshold=job.round_threshold, round_penalty=job.round_penalty, pacer_step=job.pacer_step,
        pacer_delta=job.pacer_delta, blacklist_rounds=job.blacklist_rounds, blacklist_max_len=job.blacklist_max_len,
        clip_bound=job.clip_bound, cut_off_util=job.cut_off_util, sample_window=job.sample_window,
        seed=job.sample_seed, local_steps=job.local_steps, batch_size=job.batch_size,
    )


def _availability_priority(job: JobConfig) -> int:
    level = job.avail_priority
    if level not in (0, 1, 2):
        raise ValueError(f"avail_priority must be 0 (off), 1 or 2, got {level}")
    return level


def _build_random(job: JobConfig) -> ClientSelector:
    if _availability_priority(job):
        return AvailabilityPrioritySelector(job.sample_seed)
    return RandomSelector(job.sample_seed)


def _build_oort(job: JobConfig) -> ClientSelector:
    if _availability_priority(job):
        # REFL hands Oort a candidate pool of predicted-to-leave clients; ranked by online fraction, that pool is
        # exactly the round, which would leave Oort nothing to choose.
        raise ValueError("avail_priority is supported with sample_mode 'random' only, not with 'oort'")
    return OortSelector(oort_settings(job))


SELECTOR_BUILDERS: dict[str, Callable[[JobConfig], ClientSelector]] = {
    "random": _build_random,
    "oort": _build_oort,
}
