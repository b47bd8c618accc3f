"""YAML name -> selector builder.

The names are FedScale's and REFL's ``sample_mode`` values, ``random`` and ``oort``. REFL's availability priority is
not a sample mode of its own but a switch beside it, ``avail_priority`` (0 off; 1 and 2 differ only in whether the
sample mode or chance fills the rest of the round, the same thing for ``random``), so it is read here too.

Settings are read with ``getattr(job, name, default)`` so that a JobConfig without a knob keeps FedScale's default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientSelector
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector

_ADAPTER_FIELDS = {"seed": "sample_seed", "local_steps": "local_steps", "batch_size": "batch_size"}


def oort_settings(job: JobConfig) -> OortSettings:
    """Oort's knobs from the job under Oort's own names; the seed is the job's ``sample_seed``."""
    values = {
        field.name: getattr(job, _ADAPTER_FIELDS.get(field.name, field.name), field.default)
        for field in fields(OortSettings)
    }
    return OortSettings(**values)


def _availability_priority(job: JobConfig) -> int:
    level = int(getattr(job, "avail_priority", 0))
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
