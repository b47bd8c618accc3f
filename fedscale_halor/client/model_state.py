"""A model's state-dict tensors reached directly, for loading the global weights into it and copying its trained
weights out, once per client.

Why: ``load_state_dict`` and ``state_dict`` walk every submodule and run its hooks each time; for a small model that
walk cost ~7% of a client's training. A model qualifies only when the walk would do nothing but copy: no state-dict
hooks, no extra state, and no module that loads or saves its state its own way (normalization layers' loading, which
only fills in a counter missing from old checkpoints, is the exception). The tensors are looked up in their modules
at every use, so parameters or buffers reassigned by a forward pass are still the ones read and written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.parameter import is_lazy

from fedscale_halor.types import Weights

_PLAIN_LOADERS = (nn.Module._load_from_state_dict, _NormBase._load_from_state_dict)


@dataclass(frozen=True)
class _Slot:
    key: str
    module: nn.Module
    name: str
    is_parameter: bool

    def tensor(self) -> torch.Tensor:
        held = self.module._parameters if self.is_parameter else self.module._buffers
        tensor = held[self.name]
        if tensor is None:
            raise KeyError(self.key)
        return tensor


class ModelState:
    """Loads weights into a model and copies them out, exactly as ``load_state_dict(strict=True)`` and a detached
    CPU copy of ``state_dict()`` do; build it with ``ModelState.of``."""

    def __init__(self, model: nn.Module, slots: tuple[_Slot, ...]) -> None:
        self._model = model
        self._slots = slots
        self._keys = frozenset(slot.key for slot in slots)

    @classmethod
    def of(cls, model: nn.Module) -> ModelState | None:
        """The direct view of ``model``'s state, or None when its state dict is more than its tensors."""
        if not all(_is_plain(module) for module in model.modules()):
            return None
        if any(is_lazy(parameter) for parameter in model.parameters()):
            return None
        slots = tuple(_slots(model, ""))
        if [slot.key for slot in slots] != list(model.state_dict().keys()):
            return None
        return cls(model, slots)

    def load(self, weights: Weights) -> None:
        """Copy ``weights`` into the model; a RuntimeError as ``load_state_dict`` gives it when they do not fit."""
        targets = [slot.tensor() for slot in self._slots] if weights.keys() == self._keys else None
        if targets is None or any(target.shape != weights[slot.key].shape
                                  for slot, target in zip(self._slots, targets, strict=True)):
            self._model.load_state_dict(weights, strict=True)  # raises, naming the keys
            return
        with torch.no_grad():
            for slot, target in zip(self._slots, targets, strict=True):
                target.copy_(weights[slot.key])

    def copy_out(self) -> dict[str, torch.Tensor]:
        """Detached contiguous CPU copies of every tensor of the state dict, in its order, never aliasing the model."""
        return {slot.key: cpu_copy(slot.tensor()) for slot in self._slots}


def cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A detached contiguous CPU copy of ``tensor`` (a clone on the CPU is the cheaper of the two calls)."""
    tensor = tensor.detach()
    if tensor.device.type == "cpu":
        return tensor.clone(memory_format=torch.contiguous_format)
    return tensor.to("cpu", copy=True, memory_format=torch.contiguous_format)


def _is_plain(module: nn.Module) -> bool:
    kind = type(module)
    return (kind._load_from_state_dict in _PLAIN_LOADERS
            and kind._save_to_state_dict is nn.Module._save_to_state_dict
            and kind.get_extra_state is nn.Module.get_extra_state
            and not (module._state_dict_hooks or module._state_dict_pre_hooks or module._load_state_dict_pre_hooks
                     or module._load_state_dict_post_hooks))


def _slots(module: nn.Module, prefix: str) -> Iterator[_Slot]:
    """The state dict's entries in its own order: a module's parameters, its persistent buffers, then its
    children's."""
    for name, parameter in module._parameters.items():
        if parameter is not None:
            yield _Slot(prefix + name, module, name, True)
    for name, buffer in module._buffers.items():
        if buffer is not None and name not in module._non_persistent_buffers_set:
            yield _Slot(prefix + name, module, name, False)
    for name, child in module._modules.items():
        if child is not None:
            yield from _slots(child, f"{prefix}{name}.")
