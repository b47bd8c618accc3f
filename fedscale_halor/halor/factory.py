"""Halor as a plug-in: its factory builds the aggregator's step and the executors' clients from the job's Halor
settings (``halor_choices``), and registers its messages' codecs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.executor_plugin import HalorClients
from fedscale_halor.halor.messages import HALOR_CODECS
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorSettings
from fedscale_halor.halor.settings import HalorConfig, halor_choices, job_noise
from fedscale_halor.plugin.factory import ExecutorSide, PluginFactory, ServerSide
from fedscale_halor.plugin.payloads import PayloadCodec
from fedscale_halor.server.board import WorkBoard

_log = logging.getLogger("fedscale_halor.aggregator")


class HalorPluginFactory(PluginFactory):
    name = "halor"
    settings = HalorConfig

    def enabled(self, job: JobConfig) -> bool:
        return halor_choices(job) is not None

    def switched_on_by(self, job: JobConfig) -> str:
        choices = halor_choices(job)
        return "halor" if choices is None else choices.switched_on_by

    def run_name_part(self, job: JobConfig) -> str:
        choices = halor_choices(job)
        return f"halor-{choices.resample}-{choices.distribution}" if choices is not None else "nohalor"

    def codecs(self) -> Sequence[PayloadCodec[Any]]:
        return HALOR_CODECS

    def round_plugin(self, job: JobConfig, server: ServerSide) -> HalorCoordinator | None:
        return halor_coordinator(job, server.board, server.num_classes, sum(server.client_sizes.values()))

    def executor_plugin(self, job: JobConfig, executor: ExecutorSide) -> ExecutorPlugin | None:
        # the noise the clients add is derived from the job as the aggregator derives it (no wire field)
        noise = job_noise(job)
        return HalorClients(executor.executor_id, job.sample_seed, executor.dataset,
                            0.0 if noise is None else noise.variance)


def halor_coordinator(job: JobConfig, board: WorkBoard, num_classes: int,
                      total_samples: int) -> HalorCoordinator | None:
    """The aggregator's Halor step, as halor_choices derives it from the job (halor: True or data_regulation: 1)."""
    choices = halor_choices(job)
    if choices is None:
        return None
    if total_samples >= 2**choices.mask_bits:
        # a histogram sum that reached 2^bits would wrap around and come out wrong, silently
        raise ConfigError(f"halor_mask_bits {choices.mask_bits} is too small: the clients hold {total_samples} "
                          f"samples, so a histogram sum may reach 2^{choices.mask_bits}; raise halor_mask_bits")
    _log.info("Halor (%s): %s", choices.switched_on_by, choices.summary())
    noise = job_noise(job)
    if noise is not None:
        if total_samples + noise.magnitude_bound() >= 2 ** (choices.mask_bits - 1):
            # noisy sums are signed: they must stay inside the centered range of the words to be lifted exactly
            raise ConfigError(f"halor_mask_bits {choices.mask_bits} is too small for noisy sums: {total_samples} "
                              f"samples and noise up to {noise.magnitude_bound()} must stay below "
                              f"2^{choices.mask_bits - 1}; raise halor_mask_bits")
        _log.info("Halor noise: Skellam variance %.1f per class in each round's sum (standard deviation %.1f), for "
                  "ε %g over %d rounds at δ %g; one full round costs ε %.3f", noise.variance,
                  noise.variance ** 0.5, noise.target_epsilon, noise.rounds, noise.delta, noise.round_epsilon())
    elif choices.distribution == "window":
        _log.info("Halor without noise: each round's sum is exact, and over enough rounds their differences reveal "
                  "every client's histogram (docs/halor.md); halor_noise bounds what they reveal")
    return HalorCoordinator(board, HalorSettings(
        num_classes, choices.history, choices.mask_bits, choices.timeout_s, choices.resample,
        distribution=choices.distribution, group_size=choices.group_size, group_seed=job.sample_seed,
        guard_floor=choices.guard_floor, noise=noise))
