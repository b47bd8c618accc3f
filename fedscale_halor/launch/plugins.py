"""Which plug-ins a job runs, built from its settings: the one place that names them.

The aggregator's work board and every executor get the same payload registry (the codecs of the job's plug-ins'
messages); each executor gets the executor sides of the job's plug-ins.
"""

from __future__ import annotations

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.executor_plugin import HalorClients
from fedscale_halor.halor.messages import HALOR_CODECS
from fedscale_halor.halor.settings import halor_choices, job_noise
from fedscale_halor.plugin.payloads import PayloadRegistry


def payload_registry(job: JobConfig) -> PayloadRegistry:
    registry = PayloadRegistry()
    if halor_choices(job) is not None:
        for codec in HALOR_CODECS:
            registry.register(codec)
    return registry


def executor_plugins(job: JobConfig, executor_id: str, dataset: FederatedDataset) -> tuple[ExecutorPlugin, ...]:
    if halor_choices(job) is None:
        return ()
    # the noise the clients add is derived from the job as the aggregator derives it (no wire field)
    noise = job_noise(job)
    return (HalorClients(executor_id, job.sample_seed, dataset, 0.0 if noise is None else noise.variance),)
