from dataclasses import fields

import pytest

from fedscale_halor.aggregation import (
    STRATEGY_BUILDERS,
    FedAdamOptimizer,
    FedAvg,
    FedProx,
    FedYogiOptimizer,
    ServerOptimizerStrategy,
)
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.components import build_strategy


def test_registry_covers_every_gradient_policy_choice_of_the_schema() -> None:
    # Prepare
    policy_field = next(item for item in fields(JobConfig) if item.name == "gradient_policy")

    # Assert
    assert set(STRATEGY_BUILDERS) == set(policy_field.metadata["choices"])


def test_fedavg_and_fedprox_follow_weighted_avg() -> None:
    # Execute
    fedavg = build_strategy(JobConfig(gradient_policy="fedavg", weighted_avg=False))
    fedprox = build_strategy(JobConfig(gradient_policy="fed-prox", weighted_avg=True))

    # Assert
    assert type(fedavg) is FedAvg and fedavg.weighted is False
    assert type(fedprox) is FedProx and fedprox.weighted is True


@pytest.mark.parametrize(("policy", "optimizer_type"), [("fed-yogi", FedYogiOptimizer), ("fed-adam", FedAdamOptimizer)])
def test_adaptive_policies_take_the_yogi_hyperparameters(policy: str, optimizer_type: type) -> None:
    # Prepare
    job = JobConfig(gradient_policy=policy, yogi_eta=0.01, yogi_tau=0.001, yogi_beta=0.8, yogi_beta2=0.95,
                    weighted_avg=False)

    # Execute
    strategy = build_strategy(job)

    # Assert
    assert isinstance(strategy, ServerOptimizerStrategy)
    assert type(strategy.optimizer) is optimizer_type
    optimizer = strategy.optimizer
    assert (optimizer.eta, optimizer.tau, optimizer.beta1, optimizer.beta2) == (0.01, 0.001, 0.8, 0.95)
    assert strategy.weighted is False


def test_unknown_policy_lists_the_known_ones() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="fed-yogi"):
        build_strategy(JobConfig(gradient_policy="scaffold"))
