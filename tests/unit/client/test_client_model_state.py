"""ModelState: direct loading and copying of a model's state gives what load_state_dict and state_dict give."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedscale_halor.client.model_state import ModelState


def _conv_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    net[1].register_buffer("scratch", torch.zeros(2), persistent=False)
    return net


def _shifted(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: tensor + 1 if tensor.is_floating_point() else tensor + 5 for key, tensor in weights.items()}


def test_load_writes_every_tensor_as_load_state_dict_does() -> None:
    # Prepare
    direct, reference = _conv_net(), _conv_net()
    weights = _shifted(reference.state_dict())
    view = ModelState.of(direct)
    assert view is not None
    # Execute
    view.load(weights)
    reference.load_state_dict(weights, strict=True)
    # Assert
    for key, tensor in reference.state_dict().items():
        assert torch.equal(direct.state_dict()[key], tensor), key
    assert int(direct.state_dict()["1.num_batches_tracked"]) == 5


def test_copy_out_is_the_state_dict_in_its_order_and_never_aliases() -> None:
    # Prepare
    net = _conv_net()
    view = ModelState.of(net)
    assert view is not None
    # Execute
    copies = view.copy_out()
    # Assert
    assert list(copies) == list(net.state_dict())  # the non-persistent buffer stays out
    assert "1.scratch" not in copies
    for key, tensor in net.state_dict().items():
        assert torch.equal(copies[key], tensor)
        assert copies[key].data_ptr() != tensor.data_ptr()
        assert copies[key].is_contiguous()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    assert not torch.equal(copies["0.weight"], net[0].weight)


def test_a_shared_layer_appears_under_each_of_its_keys() -> None:
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    view = ModelState.of(net)
    assert view is not None
    assert list(view.copy_out()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    weights = {key: torch.full_like(tensor, 3.0) for key, tensor in net.state_dict().items()}
    view.load(weights)
    assert torch.equal(shared.weight, torch.full((2, 2), 3.0))


def test_weights_that_do_not_fit_raise_as_load_state_dict_raises() -> None:
    net = _conv_net()
    view = ModelState.of(net)
    assert view is not None
    missing = dict(net.state_dict())
    del missing["4.bias"]
    with pytest.raises(RuntimeError, match=r"4\.bias"):
        view.load(missing)
    misshapen = {**net.state_dict(), "4.weight": torch.zeros(3, 5)}
    with pytest.raises(RuntimeError, match=r"4\.weight"):
        view.load(misshapen)


def test_a_buffer_reassigned_by_the_forward_pass_is_still_the_one_read_and_written() -> None:
    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("seen", torch.zeros(1))

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            self.seen = self.seen + inputs.shape[0]  # a new tensor, not an in-place update
            return inputs

    net = Counting()
    view = ModelState.of(net)
    assert view is not None
    net(torch.zeros(4, 1))
    assert view.copy_out()["seen"].item() == 4.0
    view.load({"seen": torch.tensor([9.0])})
    assert net.seen.item() == 9.0


class _WithExtraState(nn.Linear):
    def get_extra_state(self) -> dict[str, int]:
        return {"calls": 1}

    def set_extra_state(self, state: dict[str, int]) -> None:
        pass


def test_models_whose_state_is_more_than_their_tensors_are_not_viewed() -> None:
    hooked = nn.Sequential(nn.Linear(2, 2))
    hooked.register_state_dict_pre_hook(lambda *args: None)
    loading_hook = nn.Sequential(nn.Linear(2, 2))
    loading_hook[0].register_load_state_dict_post_hook(lambda *args: None)
    assert ModelState.of(hooked) is None
    assert ModelState.of(loading_hook) is None
    assert ModelState.of(nn.Sequential(_WithExtraState(2, 2))) is None
    assert ModelState.of(nn.Sequential(nn.LazyLinear(2))) is None
    assert ModelState.of(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))) is not None
