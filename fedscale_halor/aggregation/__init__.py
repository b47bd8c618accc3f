"""Server-side aggregation: weighted-mean math, strategies and server optimizers."""

from fedscale_halor.aggregation.adaptive import (
    AdaptiveServerOptimizer,
    FedAdamOptimizer,
    FedYogiOptimizer,
    ServerOptimizerStrategy,
)
from fedscale_halor.aggregation.base import ServerOptimizer, Strategy, fold_results
from fedscale_halor.aggregation.drift import DriftBook
from fedscale_halor.aggregation.fedavg import FedAvg, FedProx, average_results
from fedscale_halor.aggregation.feddc import FedDC, drift_corrected
from fedscale_halor.aggregation.registry import FEDDC_BUILDERS, STRATEGY_BUILDERS, StrategyBuilder
from fedscale_halor.aggregation.weighted import clone_weights, require_same_layout, weighted_average

__all__ = [
    "FEDDC_BUILDERS",
    "STRATEGY_BUILDERS",
    "AdaptiveServerOptimizer",
    "DriftBook",
    "FedAdamOptimizer",
    "FedAvg",
    "FedDC",
    "FedProx",
    "FedYogiOptimizer",
    "ServerOptimizer",
    "ServerOptimizerStrategy",
    "Strategy",
    "StrategyBuilder",
    "average_results",
    "clone_weights",
    "drift_corrected",
    "fold_results",
    "require_same_layout",
    "weighted_average",
]
