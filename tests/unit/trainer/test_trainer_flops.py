"""FLOP accounting: convolutions and dense layers counted from their shapes."""

from __future__ import annotations

import keras

from tass.trainer.flops import forward_flops_per_image, training_flops_per_image
from tass.trainer.models import alexnet_cifar


def test_conv_and_dense_flops_follow_their_shapes() -> None:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),  # 8x8 outputs
            keras.layers.Conv2D(6, 3, strides=2, padding="same"),  # 4x4 outputs
            keras.layers.ReLU(),
            keras.layers.Flatten(),  # 96 values
            keras.layers.Dense(5),
        ]
    )
    conv1 = 2 * 8 * 8 * (3 * 3 * 3) * 4
    conv2 = 2 * 4 * 4 * (3 * 3 * 4) * 6
    dense = 2 * 96 * 5
    assert forward_flops_per_image(model) == conv1 + conv2 + dense
    assert training_flops_per_image(model) == 3 * (conv1 + conv2 + dense)


def test_depthwise_and_separable_convolutions_are_counted_and_flops_follow_the_image_size() -> None:
    def model(size: int) -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((size, size, 3)),
                keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2),
                keras.layers.SeparableConv2D(4, 3, padding="same"),
            ]
        )

    depthwise = 2 * 8 * 8 * (3 * 3) * 3 * 2
    separable = 2 * 8 * 8 * (3 * 3) * 6 + 2 * 8 * 8 * 6 * 4
    assert forward_flops_per_image(model(8)) == depthwise + separable
    assert forward_flops_per_image(model(16)) == 4 * (depthwise + separable)


def test_width_scales_alexnet_cifar_about_quadratically() -> None:
    narrow, wide = alexnet_cifar(width=1.0), alexnet_cifar(width=2.0)
    # Every conv but the first has both its channel counts doubled: ~4x the work.
    assert 3.5 < forward_flops_per_image(wide) / forward_flops_per_image(narrow) < 4.0
