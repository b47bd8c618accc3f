"""Where YAML names become objects: the selector, strategy and trainer named by the job file (models resolve their
names in models/registry.py)."""

from __future__ import annotations

import torch

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.registry import FEDDC_BUILDERS, STRATEGY_BUILDERS
from fedscale_halor.client.base import Trainer
from fedscale_halor.client.local import LocalTrainer
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.base import ClientSelector
from fedscale_halor.selection.registry import SELECTOR_BUILDERS

_PROXIMAL_POLICIES = frozenset({"fed-prox"})


def _lookup(registry: dict, key: str, what: str):
    try:
        return registry[key]
    except KeyError:
        raise ValueError(f"{what} {key!r} is not available; choose one of {sorted(registry)}") from None


def build_selector(job: JobConfig) -> ClientSelector:
    return _lookup(SELECTOR_BUILDERS, job.sample_mode, "sample_mode")(job)


def build_strategy(job: JobConfig) -> Strategy:
    builders = FEDDC_BUILDERS if job.feddc else STRATEGY_BUILDERS
    return _lookup(builders, job.gradient_policy, "gradient_policy")(job)


def build_trainer(job: JobConfig, device: str) -> Trainer:
    mu = job.proxy_mu if job.gradient_policy in _PROXIMAL_POLICIES else 0.0
    return LocalTrainer(momentum=job.momentum, weight_decay=job.weight_decay, proximal_mu=mu, device=device,
                        feddc_alpha=job.feddc_alpha if job.feddc else None)


def executor_device(job: JobConfig, gpu_index: int) -> str:
    """``cuda:<gpu_index>`` (modulo the GPUs present) when the job asks for CUDA and a GPU is present, else the CPU."""
    if job.use_cuda and torch.cuda.is_available():
        return f"cuda:{gpu_index % torch.cuda.device_count()}"
    return "cpu"
