"""The model registry: a plain dict from the YAML ``model`` name to a builder ``(num_classes, input_shape)``."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.models import small_nets, torchvision_nets
from fedscale_halor.models.shapes import require_num_classes

ModelBuilder = Callable[[int, tuple[int, ...]], nn.Module]

MODEL_BUILDERS: dict[str, ModelBuilder] = {
    "digits_cnn": small_nets.digits_cnn,
    "digits_mlp": small_nets.digits_mlp,
    "femnist_cnn": small_nets.femnist_cnn,
    "resnet18": torchvision_nets.resnet18,
    "resnet34": torchvision_nets.resnet34,
    "mobilenet_v2": torchvision_nets.mobilenet_v2,
    "shufflenet_v2_x1_0": torchvision_nets.shufflenet_v2_x1_0,
    "shufflenet_v2_x2_0": torchvision_nets.shufflenet_v2_x2_0,
    "speech_resnet": torchvision_nets.speech_resnet,
    "resnet34_speech": torchvision_nets.resnet34_speech,
}


class UnknownModelError(ConfigError, KeyError):
    """A model name the registry does not hold. A ConfigError, so the command line shows it as one message; still a
    KeyError for callers that look names up."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote it


def unknown_model_message(name: str) -> str:
    """Why ``name`` is refused, with the closest registered name and every choice."""
    close = difflib.get_close_matches(name, list(MODEL_BUILDERS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown model {name!r} (known models: {', '.join(sorted(MODEL_BUILDERS))}){hint}"


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """A freshly initialized model; ``input_shape`` is one sample's shape, channels first (e.g. (3, 32, 32))."""
    try:
        builder = MODEL_BUILDERS[name]
    except KeyError:
        raise UnknownModelError(unknown_model_message(name)) from None
    require_num_classes(name, num_classes)
    return builder(num_classes, tuple(int(side) for side in input_shape))


def model_nbytes(model: nn.Module) -> int:
    """Bytes of the model's state dict (parameters and buffers): what one copy of its weights costs to send."""
    return sum(tensor.numel() * tensor.element_size() for tensor in model.state_dict().values())
