"""FLOP accounting: what one image costs a model, so throughput can be read as efficiency.

Counted analytically from the built layers: a convolution costs 2 * H_out * W_out * K_h * K_w *
C_in * C_out FLOPs per image (a multiply and an add per weight per output position), a dense
layer 2 * inputs * units. BatchNorm, activations, pooling and the loss are elementwise and below
1% of the total for these models, so they are left out. A training step costs about three
forward passes (the forward pass, the gradient with respect to the inputs and the gradient with
respect to the weights), the usual convention for comparing with a machine's matmul peak.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras

TRAINING_PASSES = 3


def _leaf_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    children = getattr(layer, "layers", None)
    if not children:
        yield layer
        return
    for child in children:
        yield from _leaf_layers(child)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward-pass FLOPs per image of one built Conv2D, DepthwiseConv2D, SeparableConv2D or
    Dense layer; 0 for anything else."""
    if isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.SeparableConv2D):
        kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        kernel_h, kernel_w, channels_in, multiplier = kernel.shape
        _, height, width, channels_out = layer.output.shape
        depthwise = 2 * height * width * kernel_h * kernel_w * channels_in * multiplier
        if isinstance(layer, keras.layers.SeparableConv2D):  # then a 1x1 convolution
            return depthwise + 2 * height * width * channels_in * multiplier * channels_out
        return depthwise
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
        _, height, width, _ = layer.output.shape
        return 2 * height * width * kernel_h * kernel_w * channels_in * channels_out
    if isinstance(layer, keras.layers.Dense):
        inputs, units = layer.kernel.shape
        positions = math.prod(layer.output.shape[1:-1])  # 1 after a flatten or global pool
        return 2 * positions * inputs * units
    return 0


def forward_flops_per_image(model: keras.Model) -> int:
    """FLOPs of one image's forward pass through `model` (a built Sequential or functional)."""
    return sum(layer_flops(layer) for layer in _leaf_layers(model))


def training_flops_per_image(model: keras.Model) -> int:
    """FLOPs one image costs a training step: forward plus backward, about 3 forward passes."""
    return TRAINING_PASSES * forward_flops_per_image(model)
