"""Which plug-ins a job runs, built from its settings: the one place that names them.

The aggregator's work board and every executor get the same payload registry (the codecs of the job's plug-ins'
messages); each executor gets the executor sides of the job's plug-ins.
"""

from __future__ import annotations

import logging

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.executor_plugin import HalorClients
from fedscale_halor.halor.messages import HALOR_CODECS
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorSettings
from fedscale_halor.halor.settings import halor_choices, job_noise
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.server.board import WorkBoard

_log = logging.getLogger("fedscale_halor.aggregator")


def payload_registry(job: JobConfig) -> PayloadRegistry:
    registry = PayloadRegistry()
    if halor_choices(job) is not None:
        for codec in HALOR_CODECS:
            registry.register(codec)
    return registry


def round_plugins(job: JobConfig, board: WorkBoard, num_classes: int, total_samples: int) -> tuple[RoundPlugin, ...]:
    """The aggregator's side of the job's plug-ins, in the order their hooks run."""
    halor = halor_coordinator(job, board, num_classes, total_samples)
    return () if halor is None else (halor,)


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


def executor_plugins(job: JobConfig, executor_id: str, dataset: FederatedDataset) -> tuple[ExecutorPlugin, ...]:
    if halor_choices(job) is None:
        return ()
    # the noise the clients add is derived from the job as the aggregator derives it (no wire field)
    noise = job_noise(job)
    return (HalorClients(executor_id, job.sample_seed, dataset, 0.0 if noise is None else noise.variance),)
