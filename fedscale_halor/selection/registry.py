"""YAML name -> selector builder."""

from __future__ import annotations

from collections.abc import Callable

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.base import ClientSelector
from fedscale_halor.selection.random_selector import RandomSelector

SELECTOR_BUILDERS: dict[str, Callable[[JobConfig], ClientSelector]] = {
    "random": lambda job: RandomSelector(job.sample_seed),
}
