"""Whether a model can train on a data set's samples, found out once before any client trains.

Every builder sizes its layers from the sample shape, but a builder may still refuse a shape (an image model given
feature vectors), and a model that builds may still fail on its first batch or give the wrong number of logits. Left
to the first round, that failure repeats on every client and ends in a quorum error that says little about its cause.
"""

from __future__ import annotations

import torch
from torch import nn

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.models.registry import build_model


def _mismatch(name: str, data_set: str, num_classes: int, input_shape: tuple[int, ...], reason: str) -> ConfigError:
    return ConfigError(f"model {name!r} does not fit {data_set} (samples of shape {input_shape}, {num_classes} "
                       f"classes): {reason}; choose a model for these samples (job_conf.model) or another data_set")


def build_model_for(name: str, num_classes: int, input_shape: tuple[int, ...], data_set: str) -> nn.Module:
    """``build_model``, then one forward pass of a zero sample: a model that cannot take the data set's samples, or
    that gives other than ``num_classes`` logits, raises ConfigError naming the model and the data set."""
    shape = tuple(int(side) for side in input_shape)
    try:
        model = build_model(name, num_classes, shape)
    except ConfigError:
        raise
    except ValueError as error:
        # the builders word their refusals "model 'x' needs ...": the message names the model once already
        text = str(error)
        reason = f"it {text.removeprefix(f'model {name!r} ')}" if text.startswith(f"model {name!r} ") else text
        raise _mismatch(name, data_set, num_classes, shape, reason) from None
    check_model_fits(model, name, num_classes, shape, data_set)
    return model


def check_model_fits(model: nn.Module, name: str, num_classes: int, input_shape: tuple[int, ...],
                     data_set: str) -> None:
    """One forward pass of a zero sample in eval mode, which leaves the weights and any running statistics as they
    were; raises ConfigError when it fails or its output is not one row of ``num_classes`` logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros((1, *input_shape), dtype=torch.float32))
    except (RuntimeError, ValueError, IndexError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _mismatch(name, data_set, num_classes, input_shape, f"its first forward pass fails ({reason})") from None
    finally:
        model.train(was_training)
    if tuple(logits.shape) != (1, num_classes):
        raise _mismatch(name, data_set, num_classes, input_shape,
                        f"it gives logits of shape {tuple(logits.shape)} for one sample, expected (1, {num_classes})")
