"""Small real Keras models exported as the trainer exports them, and image files, for the
prediction tests (TensorFlow is imported only by the tests that use these)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tass.trainer.saving import export_model


def tiny_model_file(folder: Path, class_names: list[str], seed: int) -> Path:
    """A 32x32x3 -> len(class_names) softmax model, saved like a published model."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    outputs = keras.layers.Dense(len(class_names), activation="softmax")(pooled)
    path = folder / f"tiny-{seed}.keras"
    export_model(keras.Model(inputs, outputs), path, class_names)
    return path


def random_pixels(count: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), np.uint8)


def png(pixels: np.ndarray) -> bytes:
    return tf.io.encode_png(pixels).numpy()


def jpeg(pixels: np.ndarray) -> bytes:
    return tf.io.encode_jpeg(pixels, quality=95).numpy()
