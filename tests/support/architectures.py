"""Keras model configs as `model.to_json()` writes them, built as plain data (no TensorFlow)."""

from __future__ import annotations

from typing import Any


def layer(cls: str, name: str, **config: Any) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": cls,
        "config": {"name": name, **config},
        "registered_name": None,
    }


def small_cnn(size: int | None = 32, channels: int = 3, units: int = 10) -> dict[str, Any]:
    """What `to_json()` writes for a small Sequential CNN (helpers included)."""
    init = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "mine",
            "layers": [
                layer("InputLayer", "images", batch_shape=[None, size, size, channels]),
                layer("Conv2D", "conv", filters=8, kernel_size=[3, 3], strides=[2, 2],
                       padding="same", activation="relu", kernel_initializer=init),
                layer("GlobalAveragePooling2D", "pool"),
                layer("Dense", "head", units=units, activation="softmax"),
            ],
        },
        "registered_name": None,
    }  # fmt: skip
