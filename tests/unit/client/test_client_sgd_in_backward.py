import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fedscale_halor.client.sgd_in_backward import SGDStep, fusable_linears, sgd_in_backward


def test_one_step_of_a_single_layer_matches_the_update_computed_by_hand() -> None:
    # Prepare: out = w.x + b with w = (1, 2), b = 3, x = (1, 1); loss = out, so dloss/dw = x and dloss/db = 1
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
        layer.bias.fill_(3.0)

    # Execute: lr 0.5, weight decay 0.1 -> w <- (1 - 0.05) w - 0.5 x, b <- 0.95 b - 0.5
    with sgd_in_backward(layer, SGDStep(learning_rate=0.5, weight_decay=0.1)) as updated:
        layer(torch.tensor([[1.0, 1.0]])).sum().backward()

    # Assert
    assert updated == {id(layer.weight), id(layer.bias)}
    assert layer.weight.detach().flatten().tolist() == pytest.approx([0.45, 1.4])
    assert layer.bias.item() == pytest.approx(2.35)
    assert layer.weight.grad is None and layer.bias.grad is None


class ConvThenDense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.hidden = nn.Linear(4 * 6 * 6, 16)
        self.head = nn.Linear(16, 5, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(torch.relu(self.conv(images)).flatten(1))))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_several_steps_match_torch_sgd_on_every_parameter(weight_decay: float) -> None:
    # Prepare: two copies of one model; the reference trains with torch.optim.SGD alone
    torch.manual_seed(0)
    reference = ConvThenDense()
    fused = ConvThenDense()
    fused.load_state_dict(reference.state_dict())
    images, labels = torch.randn(8, 1, 6, 6), torch.randint(0, 5, (8,))
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, weight_decay=weight_decay)

    # Execute
    for _ in range(6):
        reference_optimizer.zero_grad()
        F.cross_entropy(reference(images), labels).backward()
        reference_optimizer.step()
    with sgd_in_backward(fused, SGDStep(0.1, weight_decay)) as updated:
        rest = [parameter for parameter in fused.parameters() if id(parameter) not in updated]
        optimizer = torch.optim.SGD(rest, lr=0.1, weight_decay=weight_decay)
        for _ in range(6):
            optimizer.zero_grad()
            F.cross_entropy(fused(images), labels).backward()
            optimizer.step()

    # Assert: the convolution went through the optimizer, the dense layers through backward; all agree
    assert [id(parameter) for parameter in rest] == [id(fused.conv.weight), id(fused.conv.bias)]
    for name, tensor in reference.state_dict().items():
        assert torch.allclose(fused.state_dict()[name], tensor, atol=1e-6), name
    assert not torch.equal(fused.hidden.weight, ConvThenDense().hidden.weight)


def test_a_dense_layer_over_sequences_and_a_first_layer_without_input_gradient() -> None:
    # Prepare: inputs of shape (batch, time, features), which need no gradient
    torch.manual_seed(1)
    reference = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    fused = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    fused.load_state_dict(reference.state_dict())
    inputs = torch.randn(5, 7, 3)

    # Execute
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.2)
    for _ in range(3):
        optimizer.zero_grad()
        reference(inputs).square().mean().backward()
        optimizer.step()
    with sgd_in_backward(fused, SGDStep(0.2)):
        for _ in range(3):
            fused(inputs).square().mean().backward()

    # Assert
    for name, tensor in reference.state_dict().items():
        assert torch.allclose(fused.state_dict()[name], tensor, atol=1e-6), name


def test_shared_or_frozen_layers_are_left_to_the_optimizer() -> None:
    # Prepare: a tied pair, a frozen layer and one ordinary layer
    tied_a, tied_b, frozen, ordinary = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
    tied_b.weight = tied_a.weight
    frozen.weight.requires_grad_(False)
    model = nn.Sequential(tied_a, tied_b, frozen, ordinary)

    # Execute
    chosen = fusable_linears(model)

    # Assert
    assert chosen == [ordinary]


def test_leaving_the_block_restores_the_layers_and_no_grad_forwards_change_nothing() -> None:
    # Prepare
    layer = nn.Linear(2, 2)
    before = layer.weight.detach().clone()

    # Execute: a forward without autograd inside the block, then an ordinary step after it
    with sgd_in_backward(layer, SGDStep(1.0)), torch.no_grad():
        layer(torch.ones(1, 2))
    assert torch.equal(layer.weight, before)
    layer(torch.ones(1, 2)).sum().backward()

    # Assert: outside the block the gradient is materialized again and the weights are untouched by backward
    assert "forward" not in vars(layer)
    assert layer.weight.grad is not None
    assert torch.equal(layer.weight, before)
