"""The strategy registry: a plain dict from the YAML ``gradient_policy`` name to a builder taking the job config."""

from __future__ import annotations

from collections.abc import Callable

from fedscale_halor.aggregation.adaptive import FedAdamOptimizer, FedYogiOptimizer, ServerOptimizerStrategy
from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fedavg import FedAvg, FedProx
from fedscale_halor.config.schema import JobConfig

StrategyBuilder = Callable[[JobConfig], Strategy]


def _fedavg(job: JobConfig) -> Strategy:
    return FedAvg(weighted=job.weighted_avg)


def _fedprox(job: JobConfig) -> Strategy:
    return FedProx(weighted=job.weighted_avg)


def _fedyogi(job: JobConfig) -> Strategy:
    optimizer = FedYogiOptimizer(eta=job.yogi_eta, tau=job.yogi_tau, beta1=job.yogi_beta, beta2=job.yogi_beta2)
    return ServerOptimizerStrategy(optimizer, weighted=job.weighted_avg)


def _fedadam(job: JobConfig) -> Strategy:
    optimizer = FedAdamOptimizer(eta=job.yogi_eta, tau=job.yogi_tau, beta1=job.yogi_beta, beta2=job.yogi_beta2)
    return ServerOptimizerStrategy(optimizer, weighted=job.weighted_avg)


STRATEGY_BUILDERS: dict[str, StrategyBuilder] = {
    "fedavg": _fedavg,
    "fed-prox": _fedprox,
    "fed-yogi": _fedyogi,
    "fed-adam": _fedadam,
}

