import math

import pytest
import torch

from fedscale_halor.aggregation import FedAdamOptimizer, FedYogiOptimizer, ServerOptimizerStrategy
from fedscale_halor.aggregation.base import fold_results
from fedscale_halor.types import TrainResult


def f64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_fedadam_two_steps_by_hand() -> None:
    # Prepare: eta = 1, tau = 1 (so v starts at 1), beta1 = beta2 = 0.5
    optimizer = FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5)

    # Execute
    # step 1: delta = 1 - 0 = 1; m = 0.5 * 0 + 0.5 * 1 = 0.5; v = 0.5 * 1 + 0.5 * 1 = 1
    #         w = 0 + 0.5 / (sqrt(1) + 1) = 0.25
    first = optimizer.step({"w": f64(0.0)}, {"w": f64(1.0)})
    # step 2: delta = 7.25 - 0.25 = 7; m = 0.5 * 0.5 + 0.5 * 7 = 3.75; v = 0.5 * 1 + 0.5 * 49 = 25
    #         w = 0.25 + 3.75 / (sqrt(25) + 1) = 0.875
    second = optimizer.step(first, {"w": f64(7.25)})

    # Assert
    assert float(first["w"]) == pytest.approx(0.25)
    assert float(second["w"]) == pytest.approx(0.875)


def test_fedyogi_two_steps_by_hand() -> None:
    # Prepare: eta = 1, tau = 1 (v starts at 1), beta1 = 0.5, beta2 = 2/3 (so 1 - beta2 = 1/3)
    optimizer = FedYogiOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=2.0 / 3.0)

    # Execute
    # step 1, element a: delta = 3; m = 1.5; v = 1 - (1/3) * 9 * sign(1 - 9) = 4; w = 1.5 / (2 + 1) = 0.5
    #         element b: delta = 0.5; m = 0.25; v = 1 - (1/3) * 0.25 * sign(1 - 0.25) = 11/12 (v shrinks)
    #                    w = 0.25 / (sqrt(11/12) + 1) = 0.25 / 1.957427 = 0.127719
    first = optimizer.step({"w": f64(0.0, 0.0)}, {"w": f64(3.0, 0.5)})
    state_after_first = optimizer.state_dict()
    # step 2, element a: delta = 6; m = 0.75 + 3 = 3.75; v = 4 - (1/3) * 36 * sign(4 - 36) = 16
    #                    w = 0.5 + 3.75 / (4 + 1) = 1.25
    #         element b: delta = 0; m = 0.125; v stays 11/12; w = 0.127719 + 0.125 / 1.957427 = 0.191579
    second = optimizer.step(first, {"w": first["w"] + f64(6.0, 0.0)})

    # Assert
    assert first["w"].tolist() == pytest.approx([0.5, 0.127719], abs=1e-6)
    assert state_after_first["second_moment.w"].tolist() == pytest.approx([4.0, 11.0 / 12.0])
    assert second["w"].tolist() == pytest.approx([1.25, 0.191579], abs=1e-6)


def test_yogi_and_adam_differ_where_delta_squared_exceeds_v() -> None:
    # Prepare: the step-1 case of the Yogi test, under Adam: v = (2/3) * 1 + (1/3) * 9 = 11/3
    adam = FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=2.0 / 3.0)

    # Execute
    stepped = adam.step({"w": f64(0.0)}, {"w": f64(3.0)})

    # Assert: w = 1.5 / (sqrt(11/3) + 1) = 0.513434, not Yogi's 0.5
    assert float(stepped["w"]) == pytest.approx(1.5 / (math.sqrt(11.0 / 3.0) + 1.0))


def test_integer_buffers_are_copied_from_the_average_and_dtypes_kept() -> None:
    # Prepare
    optimizer = FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5)
    global_weights = {"w": torch.tensor([0.0]), "num_batches_tracked": torch.tensor(5)}
    averaged = {"w": torch.tensor([1.0]), "num_batches_tracked": torch.tensor(7)}

    # Execute
    stepped = optimizer.step(global_weights, averaged)

    # Assert
    assert int(stepped["num_batches_tracked"]) == 7
    assert stepped["num_batches_tracked"].dtype == torch.int64
    assert stepped["w"].dtype == torch.float32
    assert float(stepped["w"]) == pytest.approx(0.25)
    assert set(optimizer.state_dict()) == {"first_moment.w", "second_moment.w"}


def test_exported_state_resumes_the_same_trajectory() -> None:
    # Prepare
    original = FedYogiOptimizer(eta=0.1, tau=0.01, beta1=0.9, beta2=0.99)
    first = original.step({"w": torch.tensor([0.0, 1.0])}, {"w": torch.tensor([0.5, 0.5])})
    resumed = FedYogiOptimizer(eta=0.1, tau=0.01, beta1=0.9, beta2=0.99)
    resumed.load_state_dict(original.state_dict())
    fresh = FedYogiOptimizer(eta=0.1, tau=0.01, beta1=0.9, beta2=0.99)
    target = {"w": torch.tensor([1.0, -1.0])}

    # Execute
    continued = original.step(first, target)
    from_checkpoint = resumed.step(first, target)
    from_scratch = fresh.step(first, target)

    # Assert
    assert torch.equal(continued["w"], from_checkpoint["w"])
    assert not torch.equal(continued["w"], from_scratch["w"])


def test_unknown_or_unpaired_state_keys_are_named() -> None:
    # Prepare
    optimizer = FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5)

    # Execute / Assert
    with pytest.raises(ValueError, match=r"velocity\.w"):
        optimizer.load_state_dict({"velocity.w": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"'fc\.bias'"):
        optimizer.load_state_dict({"first_moment.fc.bias": torch.zeros(1)})


def result(client_id: int, value: float, num_samples: int) -> TrainResult:
    return TrainResult(client_id=client_id, round=0, model_version=0, weights={"w": torch.tensor([value])},
                       num_samples=num_samples, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)


def test_strategy_averages_first_then_steps() -> None:
    # Prepare: the weighted mean of 0.5 (3 samples) and 2.5 (1 sample) is 1.0, so delta = 1 as in Adam's step 1
    strategy = ServerOptimizerStrategy(FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5), weighted=True)

    # Execute
    new_global = fold_results(strategy, {"w": torch.tensor([0.0])}, [result(2, 2.5, 1), result(1, 0.5, 3)])

    # Assert
    assert float(new_global["w"]) == pytest.approx(0.25)
    assert strategy.state_dict()["first_moment.w"].tolist() == pytest.approx([0.5])


def test_strategy_without_usable_results_keeps_weights_and_state() -> None:
    # Prepare
    strategy = ServerOptimizerStrategy(FedYogiOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5))

    # Execute
    new_global = fold_results(strategy, {"w": torch.tensor([3.0])}, [result(1, 9.0, 0)])

    # Assert
    assert float(new_global["w"]) == 3.0
    assert strategy.state_dict() == {}


def test_unweighted_strategy_steps_towards_the_plain_mean() -> None:
    # Prepare: Halor's plain mean of 0.5 (3 samples) and 2.5 (1 sample) is 1.5 (the weighted one would be 1.0), so
    # delta = 1.5; Adam with eta = tau = 1, beta1 = beta2 = 0.5: m = 0.75, v = 0.5 * 1 + 0.5 * 2.25 = 1.625,
    # w = 0.75 / (sqrt(1.625) + 1) = 0.75 / 2.274755 = 0.329706
    strategy = ServerOptimizerStrategy(FedAdamOptimizer(eta=1.0, tau=1.0, beta1=0.5, beta2=0.5), weighted=False)

    # Execute
    new_global = fold_results(strategy, {"w": torch.tensor([0.0])}, [result(2, 2.5, 1), result(1, 0.5, 3)])

    # Assert
    assert float(new_global["w"]) == pytest.approx(0.75 / (math.sqrt(1.625) + 1.0))
    assert float(new_global["w"]) == pytest.approx(0.329706, abs=1e-6)
