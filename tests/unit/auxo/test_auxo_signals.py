from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedscale_halor.auxo.signals import centered, client_signal, normalized


def _toy() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    old = {"weight": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "bias": torch.tensor([0.5, -1.0])}
    new = {"weight": torch.tensor([[0.0, 2.0], [1.0, 4.0]]), "bias": torch.tensor([0.25, 1.0])}
    return old, new


def test_signal_is_the_last_half_of_old_minus_new_in_float16() -> None:
    # Prepare: old - new = weight [1, 0, 2, 0], bias [0.25, -2]; six values, the last three kept
    old, new = _toy()
    # Execute
    signal = client_signal(old, new, grad_ratio=2)
    # Assert
    assert signal.dtype == np.float16
    np.testing.assert_array_equal(signal, np.array([0.0, 0.25, -2.0], dtype=np.float16))


def test_signal_follows_the_old_weights_tensor_order() -> None:
    # Prepare: the same tensors, the new ones listed bias first
    old, new = _toy()
    reordered = {"bias": new["bias"], "weight": new["weight"]}
    # Execute / Assert: 6 // 3 = 2 values kept, the bias difference
    np.testing.assert_array_equal(client_signal(old, reordered, grad_ratio=3), np.array([0.25, -2.0], np.float16))


def test_signal_refuses_mismatched_models() -> None:
    old, new = _toy()
    with pytest.raises(ValueError, match="bias"):
        client_signal(old, {"weight": new["weight"]}, grad_ratio=2)
    with pytest.raises(ValueError, match="shape"):
        client_signal(old, {**new, "bias": torch.zeros(3)}, grad_ratio=2)
    with pytest.raises(ValueError, match="too few"):
        client_signal(old, new, grad_ratio=7)


def test_centered_subtracts_the_mean_and_normalized_scales_rows_to_one() -> None:
    # Prepare: the mean of the rows is [2, 1]
    signals = np.array([[1, 0], [3, 0], [2, 3]], dtype=np.float16)
    # Execute
    centred = centered(signals)
    unit = normalized(centred)
    # Assert
    np.testing.assert_array_equal(centred, [[-1, -1], [1, -1], [0, 2]])
    half = 1 / math.sqrt(2)
    np.testing.assert_allclose(unit, [[-half, -half], [half, -half], [0, 1]])


def test_normalized_leaves_a_zero_row_zero() -> None:
    np.testing.assert_array_equal(normalized(np.array([[0.0, 0.0], [3.0, 4.0]])), [[0, 0], [0.6, 0.8]])
