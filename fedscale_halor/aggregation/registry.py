"""The strategy registries: plain dicts from the YAML ``gradient_policy`` name to a builder taking the job config.

``STRATEGY_BUILDERS`` serves plain jobs; ``FEDDC_BUILDERS`` serves jobs with ``feddc: 1``, where FedDC forms the
drift-corrected model and the policy's server optimizer (if any) steps towards it.
"""

from __future__ import annotations

from collections.abc import Callable

from fedscale_halor.aggregation.adaptive import FedAdamOptimizer, FedYogiOptimizer, ServerOptimizerStrategy
from fedscale_halor.aggregation.base import ServerOptimizer, Strategy
from fedscale_halor.aggregation.fedavg import FedAvg, FedProx
from fedscale_halor.aggregation.feddc import FedDC
from fedscale_halor.config.schema import JobConfig

StrategyBuilder = Callable[[JobConfig], Strategy]


def _fedavg(job: JobConfig) -> Strategy:
    return FedAvg(weighted=job.weighted_avg)


def _fedprox(job: JobConfig) -> Strategy:
    return FedProx(weighted=job.weighted_avg)


def _yogi_optimizer(job: JobConfig) -> ServerOptimizer:
    return FedYogiOptimizer(eta=job.yogi_eta, tau=job.yogi_tau, beta1=job.yogi_beta, beta2=job.yogi_beta2)


def _adam_optimizer(job: JobConfig) -> ServerOptimizer:
    return FedAdamOptimizer(eta=job.yogi_eta, tau=job.yogi_tau, beta1=job.yogi_beta, beta2=job.yogi_beta2)


def _fedyogi(job: JobConfig) -> Strategy:
    return ServerOptimizerStrategy(_yogi_optimizer(job), weighted=job.weighted_avg)


def _fedadam(job: JobConfig) -> Strategy:
    return ServerOptimizerStrategy(_adam_optimizer(job), weighted=job.weighted_avg)


def _feddc(job: JobConfig) -> Strategy:
    # fed-prox's proximal term lives in the clients' loss; its server side is FedAvg's
    return FedDC(weighted=job.weighted_avg)


def _feddc_yogi(job: JobConfig) -> Strategy:
    return FedDC(weighted=job.weighted_avg, optimizer=_yogi_optimizer(job))


def _feddc_adam(job: JobConfig) -> Strategy:
    return FedDC(weighted=job.weighted_avg, optimizer=_adam_optimizer(job))


STRATEGY_BUILDERS: dict[str, StrategyBuilder] = {
    "fedavg": _fedavg,
    "fed-prox": _fedprox,
    "fed-yogi": _fedyogi,
    "fed-adam": _fedadam,
}

FEDDC_BUILDERS: dict[str, StrategyBuilder] = {
    "fedavg": _feddc,
    "fed-prox": _feddc,
    "fed-yogi": _feddc_yogi,
    "fed-adam": _feddc_adam,
}
