"""Server-side aggregation: weighted-mean math, strategies and server optimizers."""

from fedscale_halor.aggregation.adaptive import (
    AdaptiveServerOptimizer,
    FedAdamOptimizer,
    FedYogiOptimizer,
    ServerOptimizerStrategy,
)
from fedscale_halor.aggregation.base import ServerOptimizer, Strategy, arrival_independent_order
from fedscale_halor.aggregation.fedavg import FedAvg, FedProx, average_results
from fedscale_halor.aggregation.registry import STRATEGY_BUILDERS, StrategyBuilder
from fedscale_halor.aggregation.weighted import clone_weights, require_same_layout, weighted_average

__all__ = [
    "STRATEGY_BUILDERS",
    "AdaptiveServerOptimizer",
    "FedAdamOptimizer",
    "FedAvg",
    "FedProx",
    "FedYogiOptimizer",
    "ServerOptimizer",
    "ServerOptimizerStrategy",
    "Strategy",
    "StrategyBuilder",
    "arrival_independent_order",
    "average_results",
    "clone_weights",
    "require_same_layout",
    "weighted_average",
]
