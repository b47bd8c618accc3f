"""FedDC's drifts (one tensor per client and parameter) and its server optimizer go through a checkpoint."""

from pathlib import Path

import torch

from fedscale_halor.aggregation import FedDC, FedYogiOptimizer
from fedscale_halor.aggregation.base import fold_results
from fedscale_halor.server.checkpoint import CheckpointState, load_strategy_state, save_checkpoint
from fedscale_halor.types import TrainResult


def result(client_id: int, theta: list[float], delta: list[float]) -> TrainResult:
    return TrainResult(client_id=client_id, round=1, model_version=0, weights={"layer.w": torch.tensor(theta)},
                       num_samples=4, num_steps=2, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.1,
                       client_state={"layer.w": torch.tensor(delta)})


def new_strategy() -> FedDC:
    strategy = FedDC(weighted=True, optimizer=FedYogiOptimizer(eta=0.1, tau=0.01, beta1=0.9, beta2=0.99))
    strategy.register_clients({10: 4, 11: 4, 12: 8})
    return strategy


def test_a_checkpointed_feddc_strategy_resumes_with_the_same_numbers(tmp_path: Path) -> None:
    # Prepare: one round, checkpointed
    original = new_strategy()
    w1 = fold_results(original, {"layer.w": torch.tensor([0.0, 0.0])},
                            [result(10, [1.0, 2.0], [1.0, 2.0]), result(11, [0.3, -0.1], [0.3, -0.1])])
    save_checkpoint(tmp_path, CheckpointState(round=1, model_version=1, clock_s=0.0), w1, original.state_dict())
    restored = FedDC(weighted=True, optimizer=FedYogiOptimizer(eta=0.1, tau=0.01, beta1=0.9, beta2=0.99))

    # Execute
    state = load_strategy_state(tmp_path)
    restored.load_state_dict(state)
    restored.register_clients({10: 4, 11: 4, 12: 8})
    round_2 = [result(11, [0.5, 0.5], [0.25, 0.75]), result(12, [-1.0, 0.0], [-1.5, -0.25])]
    expected, got = fold_results(original, w1, round_2), fold_results(restored, w1, round_2)

    # Assert
    assert sorted(state) == ["drift.10.layer.w", "drift.11.layer.w", "drift_sum.layer.w",
                             "server_optimizer.first_moment.layer.w", "server_optimizer.second_moment.layer.w"]
    assert state["drift_sum.layer.w"].dtype == torch.float64
    assert torch.equal(got["layer.w"], expected["layer.w"])
    for client in (10, 11, 12):
        assert torch.equal(restored.task_state(client)["layer.w"], original.task_state(client)["layer.w"])
