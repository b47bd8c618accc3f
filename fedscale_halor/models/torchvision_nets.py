"""torchvision architectures (random initialization, never downloaded) adapted to small, few-channel inputs.

For inputs no larger than ``SMALL_INPUT_MAX_SIDE`` pixels the ImageNet stems, which shrink the image 4x before the
first block, would leave 32x32 CIFAR images (let alone 8x8 digits) at 1x1 far too early; they are replaced by a
stride-1 3x3 convolution without max-pooling, as the usual CIFAR variants of these networks do. Larger inputs keep the
ImageNet stem. The first convolution always takes ``input_shape[0]`` channels.
"""

from __future__ import annotations

from torch import nn

from fedscale_halor.models.shapes import require_image_shape

SMALL_INPUT_MAX_SIDE = 64


def _is_small(height: int, width: int) -> bool:
    return max(height, width) <= SMALL_INPUT_MAX_SIDE


def _resnet(model_name: str, depth: int, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    from torchvision.models import resnet18, resnet34

    channels, height, width = require_image_shape(model_name, input_shape)
    builder = {18: resnet18, 34: resnet34}[depth]
    model = builder(weights=None, num_classes=num_classes)
    if _is_small(height, width):
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif channels != 3:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def resnet18(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return _resnet("resnet18", 18, num_classes, input_shape)


def resnet34(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return _resnet("resnet34", 34, num_classes, input_shape)


def speech_resnet(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-18 for 1-channel spectrogram features (e.g. 1x32x32 google_speech MFCC images)."""
    return _resnet("speech_resnet", 18, num_classes, input_shape)


def resnet34_speech(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-34 for 1-channel spectrogram features: the network FedScale trains on google_speech."""
    return _resnet("resnet34_speech", 34, num_classes, input_shape)


def mobilenet_v2(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """MobileNetV2; on small inputs the stem and the second stage use stride 1 (the CIFAR variant), leaving four
    stride-2 stages: 32x32 -> 2x2 before global pooling."""
    from torchvision.models import MobileNetV2

    channels, height, width = require_image_shape("mobilenet_v2", input_shape)
    small = _is_small(height, width)
    # (expansion t, output channels c, repeats n, first stride s), torchvision's ImageNet table
    stages = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
              [6, 320, 1, 1]]
    if small:
        stages[1][3] = 1
    model = MobileNetV2(num_classes=num_classes, inverted_residual_setting=stages)
    stem_conv = model.features[0][0]
    if small or channels != 3:
        model.features[0][0] = nn.Conv2d(channels, stem_conv.out_channels, kernel_size=3,
                                         stride=1 if small else 2, padding=1, bias=False)
    return model


def _shufflenet(model_name: str, width_name: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    from torchvision.models import shufflenet_v2_x1_0, shufflenet_v2_x2_0

    channels, height, width = require_image_shape(model_name, input_shape)
    builder = {"x1_0": shufflenet_v2_x1_0, "x2_0": shufflenet_v2_x2_0}[width_name]
    model = builder(weights=None, num_classes=num_classes)
    small = _is_small(height, width)
    stem_conv = model.conv1[0]
    if small or channels != 3:
        model.conv1[0] = nn.Conv2d(channels, stem_conv.out_channels, kernel_size=3,
                                   stride=1 if small else 2, padding=1, bias=False)
    if small:
        model.maxpool = nn.Identity()
    return model


def shufflenet_v2_x1_0(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return _shufflenet("shufflenet_v2_x1_0", "x1_0", num_classes, input_shape)


def shufflenet_v2_x2_0(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return _shufflenet("shufflenet_v2_x2_0", "x2_0", num_classes, input_shape)
