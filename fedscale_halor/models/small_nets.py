"""Small convolutional and dense networks for 8x8 digits and 28x28 FEMNIST-style images."""

from __future__ import annotations

import math

from torch import nn

from fedscale_halor.models.shapes import require_image_shape


def femnist_cnn(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """The LEAF FEMNIST CNN: two 5x5 convolutions (32, 64 channels) each followed by 2x2 max-pooling, then a
    2048-unit dense layer and the classifier. Sized from ``input_shape`` so that it is not tied to 28x28."""
    channels, height, width = require_image_shape("femnist_cnn", input_shape)
    pooled_area = (height // 2 // 2) * (width // 2 // 2)
    if pooled_area == 0:
        raise ValueError(f"model 'femnist_cnn' needs inputs of at least 4x4 pixels, got {tuple(input_shape)}")
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * pooled_area, 2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, num_classes),
    )


def digits_cnn(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """A small CNN for 1x8x8 digits: cheap enough to simulate hundreds of clients on a CPU.

    No BatchNorm on purpose: clients with a handful of samples would otherwise train on batch statistics of one or
    two images.
    """
    channels, height, width = require_image_shape("digits_cnn", input_shape)
    pooled_area = (height // 2) * (width // 2)
    if pooled_area == 0:
        raise ValueError(f"model 'digits_cnn' needs inputs of at least 2x2 pixels, got {tuple(input_shape)}")
    return nn.Sequential(
        nn.Conv2d(channels, 16, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * pooled_area, 64),
        nn.ReLU(inplace=True),
        nn.Linear(64, num_classes),
    )


def digits_mlp(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """A one-hidden-layer perceptron over the flattened input (any shape)."""
    if len(input_shape) == 0 or any(int(side) <= 0 for side in input_shape):
        raise ValueError(f"model 'digits_mlp' needs a non-empty input shape of positive sizes, got {input_shape}")
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(int(side) for side in input_shape), 128),
        nn.ReLU(inplace=True),
        nn.Linear(128, num_classes),
    )
