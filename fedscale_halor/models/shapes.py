"""Checks on the per-sample input shape that every model builder receives."""

from __future__ import annotations


def require_image_shape(model_name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Return (channels, height, width), or raise naming the model when the shape is not a positive CHW triple."""
    if len(input_shape) != 3 or any(int(side) <= 0 for side in input_shape):
        raise ValueError(
            f"model {model_name!r} needs a per-sample input shape (channels, height, width) of positive sizes, "
            f"got {tuple(input_shape)}")
    channels, height, width = (int(side) for side in input_shape)
    return channels, height, width


def require_num_classes(model_name: str, num_classes: int) -> None:
    if num_classes < 1:
        raise ValueError(f"model {model_name!r} needs num_classes >= 1, got {num_classes}")
