import pytest
import torch
from torch import nn

from fedscale_halor.client import LocalTrainer
from fedscale_halor.client.feddc import DriftPenalty, drift_increment
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.components import build_trainer
from fedscale_halor.types import ClientData, TrainTask


def zero_linear() -> tuple[nn.Linear, dict[str, torch.Tensor]]:
    model = nn.Linear(2, 2)
    return model, {key: torch.zeros_like(value) for key, value in model.state_dict().items()}


DRIFT = {"weight": torch.tensor([[1.0, 0.0], [0.0, -2.0]]), "bias": torch.tensor([4.0, 0.0])}


def task(local_steps: int, learning_rate: float = 0.5, drift: dict[str, torch.Tensor] | None = None) -> TrainTask:
    return TrainTask(round=2, client_id=3, model_version=1, learning_rate=learning_rate, local_steps=local_steps,
                     batch_size=1, seed=5, client_state=DRIFT if drift is None else drift)


def one_sample(features: list[float], label: int) -> ClientData:
    return ClientData(client_id=3, features=torch.tensor([features]), labels=torch.tensor([label]))


def test_one_sgd_step_with_the_drift_penalty_by_hand() -> None:
    # Prepare: W = 0, b = 0, one sample x = (1, 2) of class 0. The logits are 0, softmax (1/2, 1/2), so the
    # cross-entropy gradient is dlogits = (-1/2, 1/2): dW = dlogits^T x = [[-1/2, -1], [1/2, 1]], db = (-1/2, 1/2).
    # At the start theta = w, so the penalty's gradient alpha * (theta + h - w) is alpha * h = 0.5 * h:
    # [[1/2, 0], [0, -1]] and (2, 0). One step with lr 0.5:
    #   W' = -0.5 * ([[-1/2, -1], [1/2, 1]] + [[1/2, 0], [0, -1]]) = -0.5 * [[0, -1], [1/2, 0]] = [[0, 1/2], [-1/4, 0]]
    #   b' = -0.5 * ((-1/2, 1/2) + (2, 0)) = (-3/4, -1/4)
    model, start = zero_linear()
    trainer = LocalTrainer(momentum=0.0, weight_decay=0.0, feddc_alpha=0.5)

    # Execute
    result = trainer.train(model, start, one_sample([1.0, 2.0], 0), task(local_steps=1))

    # Assert: momentum 0 would step the dense layer inside backward(); FedDC must keep it out of that path
    assert torch.allclose(result.weights["weight"], torch.tensor([[0.0, 0.5], [-0.25, 0.0]]), atol=1e-7)
    assert torch.allclose(result.weights["bias"], torch.tensor([-0.75, -0.25]), atol=1e-7)
    # the client reports theta - w, here the weights themselves
    assert set(result.client_state) == {"weight", "bias"}
    assert torch.equal(result.client_state["weight"], result.weights["weight"])
    assert torch.equal(result.client_state["bias"], result.weights["bias"])


def test_the_penalty_pulls_towards_w_minus_h_at_every_step() -> None:
    # Prepare: x = 0 gives the weight matrix no cross-entropy gradient, so only the penalty moves it. With lr 0.5 and
    # alpha 0.5: step 1 W1 = -0.5 * 0.5 * h = -h/4; step 2 W2 = W1 - 0.25 * (W1 + h) = -h/4 - (3/16) h = -(7/16) h.
    # (A penalty computed on detached tensors, a constant in the loss, would leave W at 0.)
    model, start = zero_linear()
    trainer = LocalTrainer(momentum=0.0, weight_decay=0.0, feddc_alpha=0.5)

    # Execute
    result = trainer.train(model, start, one_sample([0.0, 0.0], 1), task(local_steps=2))

    # Assert
    assert torch.allclose(result.weights["weight"], -7.0 / 16.0 * DRIFT["weight"], atol=1e-7)


def test_an_empty_drift_is_zero_and_the_penalty_is_then_fedprox_like() -> None:
    # Prepare: h = 0 and x = 0: the weight matrix stays at w = 0 (theta - w = 0 all along)
    model, start = zero_linear()
    trainer = LocalTrainer(momentum=0.9, weight_decay=0.0, feddc_alpha=0.5)

    # Execute
    result = trainer.train(model, start, one_sample([0.0, 0.0], 1), task(local_steps=3, drift={}))

    # Assert
    assert torch.equal(result.weights["weight"], torch.zeros(2, 2))
    assert torch.equal(result.client_state["weight"], torch.zeros(2, 2))


def test_penalty_value_and_gradient_by_hand() -> None:
    # Prepare: Linear(2, 1) at w = 0 with h = 1 everywhere; moving theta to 1 everywhere gives
    # theta + h - w = 2 on 3 parameters: (alpha / 2) * 3 * 4 = 6 with alpha = 1, gradient alpha * 2 = 2
    model = nn.Linear(2, 1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    penalty = DriftPenalty(model, alpha=1.0, drift={"weight": torch.ones(1, 2), "bias": torch.ones(1)})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    model.bias.grad = torch.tensor([0.5])  # backward's own gradient is added to, not replaced

    # Execute
    value = penalty.value()
    penalty.add_gradient()

    # Assert
    assert float(value) == pytest.approx(6.0)
    assert torch.equal(model.weight.grad, torch.full((1, 2), 2.0))
    assert torch.equal(model.bias.grad, torch.tensor([2.5]))


def test_a_drift_that_does_not_fit_the_model_is_refused_by_name() -> None:
    # Prepare
    model = nn.Linear(2, 2)

    # Execute / Assert
    with pytest.raises(ValueError, match="'bias'"):
        DriftPenalty(model, 0.1, {"weight": torch.zeros(2, 2)}, client_id=3)
    with pytest.raises(ValueError, match="'other'"):
        DriftPenalty(model, 0.1, {**DRIFT, "other": torch.zeros(1)}, client_id=3)
    with pytest.raises(ValueError, match="shape"):
        DriftPenalty(model, 0.1, {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}, client_id=3)
    with pytest.raises(ValueError, match="alpha"):
        DriftPenalty(model, -1.0, {})


def test_only_trainable_parameters_carry_a_drift() -> None:
    # Prepare: BatchNorm's running statistics and counter are buffers, the frozen layer is not trainable
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 2))
    model[2].weight.requires_grad_(False)
    start = {key: value.clone() for key, value in model.state_dict().items()}
    trained = {key: value + 1 for key, value in start.items()}

    # Execute
    increment = drift_increment(model, trained, start)

    # Assert
    assert sorted(increment) == ["0.bias", "0.weight", "1.bias", "1.weight", "2.bias"]
    assert all(torch.allclose(tensor, torch.ones_like(tensor)) for tensor in increment.values())


def test_without_feddc_the_trainer_reports_no_client_state() -> None:
    # Prepare
    model, start = zero_linear()

    # Execute
    result = LocalTrainer(momentum=0.0).train(model, start, one_sample([1.0, 2.0], 0), task(1, drift={}))

    # Assert
    assert result.client_state == {}


def test_a_client_without_samples_reports_no_drift_increment() -> None:
    # Prepare
    model, start = zero_linear()
    empty = ClientData(client_id=3, features=torch.zeros(0, 2), labels=torch.zeros(0, dtype=torch.int64))

    # Execute
    result = LocalTrainer(feddc_alpha=0.1).train(model, start, empty, task(local_steps=4))

    # Assert
    assert result.num_samples == 0 and result.client_state == {}


def test_the_job_turns_feddc_on_with_its_alpha() -> None:
    # Execute
    on = build_trainer(JobConfig(feddc=1, feddc_alpha=0.2), "cpu")
    off = build_trainer(JobConfig(feddc=0, feddc_alpha=0.2), "cpu")

    # Assert
    assert on.feddc_alpha == 0.2
    assert off.feddc_alpha is None
