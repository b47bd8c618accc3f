import math

import pytest
import torch

from fedscale_halor.aggregation import FEDDC_BUILDERS, DriftBook, FedDC, FedYogiOptimizer, drift_corrected
from fedscale_halor.aggregation.base import fold_results
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.components import build_strategy
from fedscale_halor.types import TrainResult


def result(client_id: int, theta: list[float], delta: list[float], num_samples: int = 5, steps: int = 1,
           round_index: int = 1) -> TrainResult:
    """A client's trained weights theta and the drift increment theta - w it reports ("steps" is a counter buffer,
    which has no drift)."""
    return TrainResult(client_id=client_id, round=round_index, model_version=round_index - 1,
                       weights={"w": torch.tensor(theta), "steps": torch.tensor(steps)}, num_samples=num_samples,
                       num_steps=3, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.1,
                       client_state={"w": torch.tensor(delta)})


def model(values: list[float], steps: int = 0) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor(values), "steps": torch.tensor(steps)}


def plain_strategy_after_two_rounds() -> tuple[FedDC, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The hand-computed example of the tests below: four clients, plain means (weighted=False, Halor's setting).

    Round 1 from w0 = (1, 1): client 2 alone trains to theta2 = (1.5, 0.5), so h2 = theta2 - w0 = (0.5, -0.5);
      w1 = mean(theta) + mean over all 4 clients of h = (1.5, 0.5) + (0.5, -0.5) / 4 = (1.625, 0.375).
    Round 2 from w1: client 0 trains to w1 + (1, -1), client 1 to w1 + (-1, 2):
      h0 = (1, -1), h1 = (-1, 2); h2 = (0.5, -0.5) stays; h3 = 0 (never trained)
      mean(theta) = ((2.625, -0.625) + (0.625, 2.375)) / 2 = (1.625, 0.875)
      mean(h) = ((1, -1) + (-1, 2) + (0.5, -0.5) + 0) / 4 = (0.125, 0.125)
      w2 = (1.75, 1.0)
    """
    strategy = FedDC(weighted=False)
    strategy.register_clients({0: 5, 1: 5, 2: 5, 3: 5})
    w1 = fold_results(strategy, model([1.0, 1.0]), [result(2, [1.5, 0.5], [0.5, -0.5])])
    w2 = fold_results(strategy, w1, [result(0, [2.625, -0.625], [1.0, -1.0], steps=7, round_index=2),
                                 result(1, [0.625, 2.375], [-1.0, 2.0], steps=9, round_index=2)])
    return strategy, w1, w2


def test_two_clients_server_step_and_drift_update_by_hand() -> None:
    # Execute
    strategy, w1, w2 = plain_strategy_after_two_rounds()

    # Assert: the server steps
    assert torch.equal(w1["w"], torch.tensor([1.625, 0.375]))
    assert torch.equal(w2["w"], torch.tensor([1.75, 1.0]))
    assert int(w2["steps"]) == 9  # a counter takes the maximum, as in FedAvg; it has no drift
    # the drifts the next tasks carry
    assert torch.equal(strategy.task_state(0)["w"], torch.tensor([1.0, -1.0]))
    assert torch.equal(strategy.task_state(1)["w"], torch.tensor([-1.0, 2.0]))
    assert torch.equal(strategy.task_state(2)["w"], torch.tensor([0.5, -0.5]))
    assert strategy.task_state(3) == {}


def test_a_drift_moves_by_each_increment_of_its_client() -> None:
    # Prepare: client 2 trains again in round 3, from w2, to w2 + (0.25, 0.25): h2 = (0.5, -0.5) + (0.25, 0.25)
    strategy, _, w2 = plain_strategy_after_two_rounds()
    handed_out = strategy.task_state(2)["w"]

    # Execute
    fold_results(strategy, w2, [result(2, [2.0, 1.25], [0.25, 0.25], round_index=3)])

    # Assert: the drift is replaced, never modified in place (a task may still hold the old tensor)
    assert torch.equal(strategy.task_state(2)["w"], torch.tensor([0.75, -0.25]))
    assert torch.equal(handed_out, torch.tensor([0.5, -0.5]))


def test_weighted_means_count_clients_by_their_samples() -> None:
    # Prepare: from w = 0, client 0 (1 sample) trains to (1, 2), client 1 (3 samples) to (3, 6); the population
    # holds 1 + 3 + 2 + 2 = 8 samples
    #   mean(theta) = (1 * (1, 2) + 3 * (3, 6)) / 4 = (2.5, 5);  mean(h) = (1 * (1, 2) + 3 * (3, 6)) / 8 = (1.25, 2.5)
    # plain, for comparison: mean(theta) = (2, 4), mean(h) = ((1, 2) + (3, 6)) / 4 = (1, 2)
    sizes = {0: 1, 1: 3, 2: 2, 3: 2}
    results = [result(0, [1.0, 2.0], [1.0, 2.0], num_samples=1), result(1, [3.0, 6.0], [3.0, 6.0], num_samples=3)]
    weighted, plain = FedDC(weighted=True), FedDC(weighted=False)
    weighted.register_clients(sizes)
    plain.register_clients(sizes)

    # Execute
    by_samples = fold_results(weighted, model([0.0, 0.0]), results)
    by_client = fold_results(plain, model([0.0, 0.0]), results)

    # Assert
    assert torch.equal(by_samples["w"], torch.tensor([3.75, 7.5]))
    assert torch.equal(by_client["w"], torch.tensor([3.0, 6.0]))


def test_the_result_does_not_depend_on_the_arrival_order() -> None:
    # Prepare
    results = [result(client, [0.1 * client, 0.3 / (client + 1)], [0.7 / (client + 2), -0.1 * client])
               for client in range(6)]
    in_order, reversed_order = FedDC(weighted=False), FedDC(weighted=False)
    for strategy in (in_order, reversed_order):
        strategy.register_clients({client: 1 for client in range(9)})

    # Execute
    expected = fold_results(in_order, model([0.0, 0.0]), results)
    fold = reversed_order.start_round(model([0.0, 0.0]), list(range(6)))
    for item in reversed(results):
        fold.add(item)
    got = fold.finish()

    # Assert
    assert torch.equal(got["w"], expected["w"])
    assert in_order.state_dict().keys() == reversed_order.state_dict().keys()
    assert all(torch.equal(tensor, reversed_order.state_dict()[key]) for key, tensor in in_order.state_dict().items())


def test_a_stale_update_weighs_in_the_mean_and_moves_its_drift_by_its_whole_increment() -> None:
    # Prepare: from w = 0, client 0 trains to (2, 2) now; client 1's update is one round late (weight 0.5), trained
    # to (5, -1) from an older model, hence its own increment (1, -1). Two clients in all:
    #   mean(theta) = (1 * (2, 2) + 0.5 * (5, -1)) / 1.5 = (3, 1);  mean(h) = ((2, 2) + (1, -1)) / 2 = (1.5, 0.5)
    strategy = FedDC(weighted=False)
    strategy.register_clients({0: 4, 1: 4})
    fold = strategy.start_round(model([0.0, 0.0]), [0])

    # Execute
    fold.add(result(0, [2.0, 2.0], [2.0, 2.0], round_index=2))
    fold.add_stale(result(1, [5.0, -1.0], [1.0, -1.0], round_index=1), 0.5)
    new_global = fold.finish()

    # Assert
    assert torch.equal(new_global["w"], torch.tensor([4.5, 1.5]))
    assert torch.equal(strategy.task_state(1)["w"], torch.tensor([1.0, -1.0]))


def test_with_fedyogi_the_server_steps_towards_the_drift_corrected_mean() -> None:
    # Prepare: from w = 0, clients 0 and 1 train to (1, 2) and (3, 6), two clients in all, plain means:
    #   corrected = mean(theta) + mean(h) = (2, 4) + (2, 4) = (4, 8)
    # FedYogi with eta = tau = 1, beta1 = 0.5, beta2 = 0.75: delta = (4, 8), m = (2, 4),
    #   v = 1 + 0.25 * delta^2 = (5, 17) (delta^2 > v), w = m / (sqrt(v) + 1)
    strategy = FedDC(weighted=False, optimizer=FedYogiOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.75))
    strategy.register_clients({0: 1, 1: 1})

    # Execute
    new_global = fold_results(strategy, model([0.0, 0.0]), [result(0, [1.0, 2.0], [1.0, 2.0]),
                                                        result(1, [3.0, 6.0], [3.0, 6.0])])

    # Assert
    assert new_global["w"].tolist() == pytest.approx([2 / (math.sqrt(5) + 1), 4 / (math.sqrt(17) + 1)])
    assert new_global["w"].tolist() == pytest.approx([0.618034, 0.780776], abs=1e-6)
    assert sorted(strategy.state_dict()) == ["drift.0.w", "drift.1.w", "drift_sum.w",
                                             "server_optimizer.first_moment.w", "server_optimizer.second_moment.w"]


def test_a_restored_strategy_continues_with_the_same_numbers() -> None:
    # Prepare
    original, _, w2 = plain_strategy_after_two_rounds()
    restored = FedDC(weighted=False)
    restored.load_state_dict(original.state_dict())
    restored.register_clients({0: 5, 1: 5, 2: 5, 3: 5})
    round_3 = [result(3, [0.5, 0.5], [-1.25, -0.5], round_index=3), result(0, [2.0, 1.5], [0.25, 0.5], round_index=3)]

    # Execute
    expected = fold_results(original, w2, round_3)
    got = fold_results(restored, w2, round_3)

    # Assert
    assert sorted(original.state_dict()) == ["drift.0.w", "drift.1.w", "drift.2.w", "drift.3.w", "drift_sum.w"]
    assert torch.equal(got["w"], expected["w"])
    assert torch.equal(restored.task_state(3)["w"], torch.tensor([-1.25, -0.5]))


def test_a_round_without_usable_results_keeps_the_global_model() -> None:
    # Prepare
    strategy = FedDC()
    strategy.register_clients({0: 3})
    empty = TrainResult(client_id=0, round=1, model_version=0, weights=model([9.0, 9.0]), num_samples=0,
                        num_steps=0, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)

    # Execute
    new_global = fold_results(strategy, model([1.0, 2.0]), [empty])

    # Assert
    assert torch.equal(new_global["w"], torch.tensor([1.0, 2.0]))
    assert strategy.state_dict() == {}


def test_misuse_is_named() -> None:
    # Prepare
    unregistered = FedDC()
    outsider = FedDC()
    outsider.register_clients({0: 1})

    # Execute / Assert
    with pytest.raises(RuntimeError, match="register_clients"):
        fold_results(unregistered, model([0.0, 0.0]), [result(0, [1.0, 1.0], [1.0, 1.0])])
    with pytest.raises(ValueError, match="client 7"):
        fold_results(outsider, model([0.0, 0.0]), [result(7, [1.0, 1.0], [1.0, 1.0])])
    with pytest.raises(ValueError, match="'bogus'"):
        FedDC().load_state_dict({"bogus": torch.zeros(1)})
    with pytest.raises(ValueError, match="server optimizer"):
        FedDC().load_state_dict({"server_optimizer.first_moment.w": torch.zeros(1)})
    with pytest.raises(ValueError, match="sample counts"):
        FedDC(weighted=True).register_clients({0: 0, 1: 0})
    with pytest.raises(ValueError, match="not one of the job's clients"):
        book = DriftBook(weighted=False)
        book.load_state_dict({"drift.5.w": torch.zeros(1), "drift_sum.w": torch.zeros(1, dtype=torch.float64)})
        book.register({0: 1})


def test_drift_correction_adds_in_float64_and_leaves_buffers_alone() -> None:
    # Execute
    corrected = drift_corrected({"w": torch.tensor([1.0]), "steps": torch.tensor(4)},
                                {"w": torch.tensor([2.0**-30], dtype=torch.float64)})

    # Assert: 1 + 2^-30 rounds to 1 in float32, the counter is untouched
    assert corrected["w"].dtype == torch.float32 and float(corrected["w"]) == 1.0
    assert int(corrected["steps"]) == 4


@pytest.mark.parametrize(("policy", "has_optimizer"), [("fedavg", False), ("fed-prox", False), ("fed-yogi", True),
                                                       ("fed-adam", True)])
def test_feddc_jobs_get_feddc_over_their_policy(policy: str, has_optimizer: bool) -> None:
    # Execute
    strategy = build_strategy(JobConfig(gradient_policy=policy, feddc=1, weighted_avg=False))

    # Assert
    assert isinstance(strategy, FedDC) and strategy.weighted is False
    assert (strategy.optimizer is not None) is has_optimizer
    assert not isinstance(build_strategy(JobConfig(gradient_policy=policy)), FedDC)
    assert set(FEDDC_BUILDERS) >= {policy}
