import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from fedscale_halor.client import LocalTrainer, evaluate
from fedscale_halor.types import ClientData, TrainTask


class RecordingLinear(nn.Module):
    """A linear classifier that records how often, and in which mode, it was called."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)
        self.calls = 0
        self.modes: list[bool] = []

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.append(self.training)
        return self.linear(features)


def zero_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: torch.zeros_like(value) for key, value in model.state_dict().items()}


def separable_client(client_id: int, per_class: int, seed: int = 0) -> ClientData:
    """Two well-separated blobs centred at (-2, -2) (label 0) and (2, 2) (label 1)."""
    generator = torch.Generator().manual_seed(seed)
    noise = 0.3 * torch.randn(2 * per_class, 2, generator=generator)
    centres = torch.cat([torch.full((per_class, 2), -2.0), torch.full((per_class, 2), 2.0)])
    labels = torch.cat([torch.zeros(per_class, dtype=torch.int64), torch.ones(per_class, dtype=torch.int64)])
    return ClientData(client_id=client_id, features=centres + noise, labels=labels)


def task_for(client_id: int, local_steps: int = 5, batch_size: int = 4, learning_rate: float = 0.1,
             seed: int = 11) -> TrainTask:
    return TrainTask(round=3, client_id=client_id, model_version=2, learning_rate=learning_rate,
                     local_steps=local_steps, batch_size=batch_size, seed=seed)


def test_runs_exactly_local_steps_optimizer_steps_in_train_mode() -> None:
    # Prepare: 25 samples in batches of 10 give 2 batches per pass, so 7 steps span 4 passes
    model = RecordingLinear(2, 2)
    model.eval()
    data = separable_client(client_id=4, per_class=12)
    data = ClientData(4, torch.cat([data.features, data.features[:1]]), torch.cat([data.labels, data.labels[:1]]))
    optimizer_steps: list[int] = []
    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: optimizer_steps.append(1))

    # Execute
    try:
        result = LocalTrainer().train(model, zero_weights(model), data, task_for(4, local_steps=7, batch_size=10))
    finally:
        handle.remove()

    # Assert
    assert len(optimizer_steps) == 7
    assert model.calls == 7
    assert model.modes == [True] * 7
    assert (result.num_steps, result.num_samples) == (7, 25)
    assert (result.client_id, result.round, result.model_version) == (4, 3, 2)


def test_loss_statistics_of_an_untrained_zero_model_are_log_two() -> None:
    # Prepare: with zero weights and lr = 0 every logit is 0, so every per-sample loss is ln 2
    model = RecordingLinear(2, 2)
    data = separable_client(client_id=1, per_class=5)

    # Execute
    result = LocalTrainer(weight_decay=0.0).train(model, zero_weights(model), data,
                                                  task_for(1, local_steps=3, learning_rate=0.0))

    # Assert
    assert result.loss_mean == pytest.approx(math.log(2))
    assert result.loss_square_mean == pytest.approx(math.log(2) ** 2)
    assert all(torch.equal(value, torch.zeros_like(value)) for value in result.weights.values())


def test_training_lowers_the_loss_on_a_separable_problem() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    data = separable_client(client_id=2, per_class=20)
    start = zero_weights(model)

    # Execute
    result = LocalTrainer().train(model, start, data, task_for(2, local_steps=20, batch_size=8))
    before = evaluate(RecordingLinear(2, 2), start, data.features, data.labels, batch_size=64)
    after = evaluate(RecordingLinear(2, 2), result.weights, data.features, data.labels, batch_size=64)

    # Assert
    assert before.loss == pytest.approx(math.log(2))
    assert after.loss < 0.2
    assert after.top1_correct == 40
    assert result.loss_mean < math.log(2)


def test_same_task_gives_identical_weights_whatever_the_global_random_state() -> None:
    # Prepare: dropout draws from the task's seed too, not from the global generator
    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))

    data = separable_client(client_id=5, per_class=10)
    start = build().state_dict()

    # Execute
    torch.manual_seed(123)
    first = LocalTrainer().train(build(), start, data, task_for(5, seed=77))
    torch.manual_seed(456)
    second = LocalTrainer().train(build(), start, data, task_for(5, seed=77))
    other_seed = LocalTrainer().train(build(), start, data, task_for(5, seed=78))

    # Assert
    assert all(torch.equal(first.weights[key], second.weights[key]) for key in start)
    assert first.loss_mean == second.loss_mean
    assert not all(torch.equal(first.weights[key], other_seed.weights[key]) for key in start)


def test_training_leaves_the_global_random_state_alone() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    data = separable_client(client_id=5, per_class=4)
    torch.manual_seed(9)
    expected_next = torch.rand(3)
    torch.manual_seed(9)

    # Execute
    LocalTrainer().train(model, zero_weights(model), data, task_for(5))

    # Assert
    assert torch.equal(torch.rand(3), expected_next)


def test_a_client_smaller_than_a_batch_still_trains() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    full = separable_client(client_id=6, per_class=2)
    data = ClientData(6, full.features[1:], full.labels[1:])

    # Execute
    result = LocalTrainer().train(model, zero_weights(model), data, task_for(6, local_steps=5, batch_size=10))

    # Assert
    assert (result.num_samples, result.num_steps, model.calls) == (3, 5, 5)
    assert not torch.equal(result.weights["linear.weight"], torch.zeros(2, 2))


def test_an_empty_client_returns_the_global_weights_without_training() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    start = {"linear.weight": torch.ones(2, 2), "linear.bias": torch.tensor([0.5, -0.5])}
    data = ClientData(7, torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64))

    # Execute
    result = LocalTrainer().train(model, start, data, task_for(7, local_steps=5))

    # Assert
    assert (result.num_samples, result.num_steps, model.calls) == (0, 0, 0)
    assert all(torch.equal(result.weights[key], start[key]) for key in start)


def test_a_huge_proximal_mu_keeps_the_weights_near_the_global_model() -> None:
    # Prepare: lr * mu = 1 pulls the weights back to the anchor at every step (and stays stable with momentum)
    data = separable_client(client_id=8, per_class=10)
    model = RecordingLinear(2, 2)
    start = zero_weights(model)
    task = task_for(8, local_steps=10, learning_rate=0.1)

    # Execute
    plain = LocalTrainer(proximal_mu=0.0).train(model, start, data, task)
    proximal = LocalTrainer(proximal_mu=10.0).train(model, start, data, task)

    # Assert
    def drift(weights: dict[str, torch.Tensor]) -> float:
        return math.sqrt(sum(float((weights[key] - start[key]).square().sum()) for key in start))

    assert drift(plain.weights) > 0.5
    assert 0.0 < drift(proximal.weights) < 0.2 * drift(plain.weights)


def test_returned_weights_are_detached_cpu_copies_with_buffers() -> None:
    # Prepare
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    start = {key: value.clone() for key, value in model.state_dict().items()}
    data = separable_client(client_id=9, per_class=6)

    # Execute
    result = LocalTrainer().train(model, start, data, task_for(9, local_steps=4, batch_size=4))
    reported = result.weights["0.weight"].clone()
    with torch.no_grad():
        model[0].weight.add_(100.0)

    # Assert
    assert list(result.weights) == list(start)
    assert all(result.weights[key].dtype == start[key].dtype for key in start)
    assert all(result.weights[key].device.type == "cpu" and not result.weights[key].requires_grad for key in start)
    assert int(result.weights["1.num_batches_tracked"]) == 4
    assert torch.equal(result.weights["0.weight"], reported)
    assert not torch.equal(reported, start["0.weight"])


def test_data_of_another_client_is_refused() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    data = separable_client(client_id=1, per_class=2)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 2"):
        LocalTrainer().train(model, zero_weights(model), data, task_for(2))


def test_weights_that_do_not_fit_the_model_name_the_client() -> None:
    # Prepare
    model = RecordingLinear(2, 2)
    data = separable_client(client_id=3, per_class=2)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 3"):
        LocalTrainer().train(model, {"linear.weight": torch.zeros(2, 2)}, data, task_for(3))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_model_loaded_through_its_hooks_trains_to_the_same_bits_as_one_loaded_directly(momentum: float) -> None:
    # Prepare: the hooked model cannot use the direct state view, the plain one does
    def model() -> nn.Module:
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    plain, hooked = model(), model()
    hooked.register_load_state_dict_post_hook(lambda *args: None)
    global_weights = {key: value.clone() for key, value in plain.state_dict().items()}
    trainer = LocalTrainer(momentum=momentum, weight_decay=5e-4)
    # Execute: two clients each, so the second one reloads the global weights into a trained model
    results = [[trainer.train(net, global_weights, separable_client(client, 6, seed=client), task_for(client))
                for client in (1, 2)] for net in (plain, hooked)]
    # Assert
    for direct, through_hooks in zip(*results, strict=True):
        assert list(direct.weights) == list(through_hooks.weights)
        for key, tensor in direct.weights.items():
            assert torch.equal(tensor, through_hooks.weights[key]), key
        assert direct.loss_mean == through_hooks.loss_mean
    assert not torch.equal(results[0][0].weights["0.weight"], global_weights["0.weight"])
