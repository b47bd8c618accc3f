import pytest
import torch
from torch import nn

from fedscale_halor.models import MODEL_BUILDERS, build_model, model_nbytes

INPUT_SHAPES = [(1, 8, 8), (3, 32, 32), (1, 28, 28), (1, 32, 32)]


@pytest.mark.parametrize("input_shape", INPUT_SHAPES, ids=lambda shape: "x".join(map(str, shape)))
@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_every_registered_model_maps_a_batch_to_one_logit_per_class(name: str, input_shape: tuple[int, ...]) -> None:
    # Prepare
    model = build_model(name, num_classes=7, input_shape=input_shape).eval()
    batch = torch.randn(2, *input_shape)

    # Execute
    with torch.no_grad():
        logits = model(batch)

    # Assert
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_unknown_model_name_lists_the_known_names() -> None:
    # Execute / Assert
    with pytest.raises(KeyError, match="resnet18") as raised:
        build_model("vgg_nonexistent", num_classes=10, input_shape=(3, 32, 32))
    assert "vgg_nonexistent" in str(raised.value)


def test_image_models_reject_a_shape_without_channels() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="femnist_cnn"):
        build_model("femnist_cnn", num_classes=10, input_shape=(28, 28))


def test_zero_classes_is_rejected_naming_the_model() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="digits_mlp"):
        build_model("digits_mlp", num_classes=0, input_shape=(1, 8, 8))


def test_model_nbytes_counts_every_float32_parameter() -> None:
    # Prepare: digits_mlp on 1x8x8 with 10 classes is Linear(64, 128) + Linear(128, 10):
    # 64*128 + 128 + 128*10 + 10 = 9610 float32 values = 38440 bytes.
    model = build_model("digits_mlp", num_classes=10, input_shape=(1, 8, 8))

    # Execute
    size = model_nbytes(model)

    # Assert
    assert size == 38440


def test_model_nbytes_includes_buffers() -> None:
    # Prepare: BatchNorm1d(3) holds weight, bias, running_mean, running_var (3 float32 each: 48 bytes)
    # and num_batches_tracked (one int64: 8 bytes).
    model = nn.BatchNorm1d(3)

    # Execute
    size = model_nbytes(model)

    # Assert
    assert size == 56


def test_resnet18_on_small_one_channel_inputs_uses_a_stride_one_stem_without_max_pooling() -> None:
    # Execute
    model = build_model("resnet18", num_classes=10, input_shape=(1, 28, 28))

    # Assert
    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == (3, 3)
    assert model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)


def test_resnet18_on_large_inputs_keeps_the_imagenet_stem_with_the_given_channels() -> None:
    # Execute
    model = build_model("resnet18", num_classes=10, input_shape=(1, 96, 96))

    # Assert
    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == (7, 7)
    assert model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.MaxPool2d)


def test_mobilenet_and_shufflenet_stems_take_the_input_channels_at_stride_one_on_small_inputs() -> None:
    # Execute
    mobilenet = build_model("mobilenet_v2", num_classes=10, input_shape=(1, 32, 32))
    shufflenet = build_model("shufflenet_v2_x2_0", num_classes=10, input_shape=(1, 32, 32))

    # Assert
    assert mobilenet.features[0][0].in_channels == 1
    assert mobilenet.features[0][0].stride == (1, 1)
    assert shufflenet.conv1[0].in_channels == 1
    assert shufflenet.conv1[0].stride == (1, 1)
    assert isinstance(shufflenet.maxpool, nn.Identity)


def test_femnist_cnn_has_the_leaf_layer_sizes() -> None:
    # Execute
    model = build_model("femnist_cnn", num_classes=62, input_shape=(1, 28, 28))

    # Assert: 28 -> 14 -> 7 after two poolings, so the dense layer sees 64 * 7 * 7 = 3136 inputs
    convolutions = [layer for layer in model.modules() if isinstance(layer, nn.Conv2d)]
    dense = [layer for layer in model.modules() if isinstance(layer, nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convolutions] == [(32, (5, 5), (2, 2)),
                                                                                 (64, (5, 5), (2, 2))]
    assert [(d.in_features, d.out_features) for d in dense] == [(3136, 2048), (2048, 62)]


def test_speech_models_are_resnets_of_depth_18_and_34() -> None:
    # Execute
    speech18 = build_model("speech_resnet", num_classes=35, input_shape=(1, 32, 32))
    speech34 = build_model("resnet34_speech", num_classes=35, input_shape=(1, 32, 32))

    # Assert: ResNet-18 has [2, 2, 2, 2] basic blocks per stage, ResNet-34 [3, 4, 6, 3]
    def blocks_per_stage(model: nn.Module) -> list[int]:
        return [len(stage) for stage in (model.layer1, model.layer2, model.layer3, model.layer4)]

    assert blocks_per_stage(speech18) == [2, 2, 2, 2]
    assert blocks_per_stage(speech34) == [3, 4, 6, 3]
    assert speech34.conv1.in_channels == 1
    assert speech34.fc.out_features == 35
