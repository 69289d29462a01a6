"""Small real Keras models exported as the trainer exports them, and image files, for the
prediction tests (TensorFlow is imported only by the tests that use these)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tass.trainer.saving import CLASS_NAMES_MEMBER, export_model


def tiny_model(num_classes: int, seed: int) -> keras.Model:
    """A 32x32x3 float [0, 1] -> num_classes softmax model, as training builds them."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(pooled)
    return keras.Model(inputs, outputs)


def tiny_model_file(folder: Path, class_names: list[str], seed: int) -> Path:
    """A tiny model saved like a published model (uint8 input, compiled, class names)."""
    path = folder / f"tiny-{seed}.keras"
    export_model(tiny_model(len(class_names), seed), path, class_names)
    return path


def legacy_model_file(model: keras.Model, path: Path, class_names: list[str]) -> Path:
    """`model` saved as models were published before the uint8 contract: float [0, 1] input,
    uncompiled, the class names in a zip member of their own."""
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CLASS_NAMES_MEMBER, json.dumps(list(class_names)))
    return path


def legacy_tiny_model_file(folder: Path, class_names: list[str], seed: int) -> Path:
    """A tiny model saved as models were published before the uint8 contract."""
    return legacy_model_file(
        tiny_model(len(class_names), seed), folder / f"legacy-{seed}.keras", class_names
    )


def random_pixels(count: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), np.uint8)


def png(pixels: np.ndarray) -> bytes:
    return tf.io.encode_png(pixels).numpy()


def jpeg(pixels: np.ndarray) -> bytes:
    return tf.io.encode_jpeg(pixels, quality=95).numpy()
