"""Channels-last layout for convolutional models on a CPU.

PyTorch's CPU max-pooling over NCHW tensors is an order of magnitude slower than over NHWC ones (2.1 ms against
0.13 ms for a batch of 20 32x28x28 maps on one thread), and oneDNN's convolutions prefer NHWC too: a training step of
the FEMNIST CNN takes 18% less time. Converting the module's 4-D weights is enough, since a convolution with
channels-last weights produces channels-last outputs. On a GPU the default layout stays, as float32 kernels there do
not gain from it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parameter import is_lazy


def prefer_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Store the model's 4-D weights channels-last when it has 2-D convolutions and runs on a CPU; idempotent.
    Returns whether the layout is settled: a model with parameters not yet materialized (lazy modules) is left as it
    is until its first forward pass.
    """
    if device.type != "cpu":
        return True
    if any(is_lazy(parameter) for parameter in model.parameters()):
        return False
    if any(isinstance(module, nn.Conv2d) for module in model.modules()):
        model.to(memory_format=torch.channels_last)
    return True
