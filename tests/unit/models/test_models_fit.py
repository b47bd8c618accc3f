"""A model that cannot train on a data set's samples is refused once, before any client trains, by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.models import build_model
from fedscale_halor.models.fit import build_model_for, check_model_fits
from fedscale_halor.models.registry import UnknownModelError


def test_an_unknown_model_is_a_config_error_and_a_key_error_with_the_closest_name() -> None:
    with pytest.raises(UnknownModelError) as raised:
        build_model("resnet1", 10, (1, 8, 8))

    assert isinstance(raised.value, ConfigError) and isinstance(raised.value, KeyError)
    assert str(raised.value).startswith("unknown model 'resnet1' (known models: digits_cnn, digits_mlp, ")
    assert str(raised.value).endswith("speech_resnet); did you mean 'resnet18'?")


def test_a_name_far_from_every_model_lists_them_without_a_guess() -> None:
    with pytest.raises(UnknownModelError) as raised:
        build_model("albert-base-v2", 10, (1, 8, 8))

    assert str(raised.value).endswith("speech_resnet)")


def test_an_image_model_on_feature_vectors_names_the_model_and_the_data_set() -> None:
    with pytest.raises(ConfigError) as raised:
        build_model_for("digits_cnn", 10, (64,), "synthetic")

    assert str(raised.value) == (
        "model 'digits_cnn' does not fit synthetic (samples of shape (64,), 10 classes): it needs a per-sample input "
        "shape (channels, height, width) of positive sizes, got (64,); choose a model for these samples "
        "(job_conf.model) or another data_set")


def test_a_forward_pass_that_fails_is_reported_with_its_first_line() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 4))

    with pytest.raises(ConfigError) as raised:
        check_model_fits(model, "custom", 4, (1, 8, 8), "digits")

    assert str(raised.value).startswith("model 'custom' does not fit digits (samples of shape (1, 8, 8), 4 classes): "
                                        "its first forward pass fails (mat1 and mat2 shapes cannot be multiplied")


def test_logits_of_the_wrong_width_are_refused() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))

    with pytest.raises(ConfigError) as raised:
        check_model_fits(model, "custom", 10, (1, 8, 8), "digits")

    assert "it gives logits of shape (1, 7) for one sample, expected (1, 10)" in str(raised.value)


def test_the_check_leaves_the_weights_statistics_and_mode_unchanged() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3)).train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    check_model_fits(model, "custom", 3, (1, 8, 8), "digits")

    assert model.training
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())
