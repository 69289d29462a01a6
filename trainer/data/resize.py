"""Images at the size and colour a model takes: the one resize every source goes through."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tass.trainer.data.dataset import Dataset

RESIZE_BATCH = 512  # images resized at once: bounds the float32 copy


def resize_images(images: tf.Tensor, height: int, width: int, channels: int) -> tf.Tensor:
    """uint8 (N, h, w, c) at (height, width, channels): area-averaged when shrinking,
    antialiased bilinear when growing, RGB to grayscale (ITU-R 601 luma) or back by
    repetition; rounded back to uint8."""
    if images.shape[3] == 3 and channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    elif images.shape[3] == 1 and channels == 3:
        images = tf.image.grayscale_to_rgb(images)
    if tuple(images.shape[1:3]) == (height, width):
        return tf.cast(images, tf.uint8)
    shrinking = images.shape[1] >= height and images.shape[2] >= width
    method = "area" if shrinking else "bilinear"
    smooth = tf.image.resize(images, (height, width), method=method, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(smooth), 0, 255), tf.uint8)


def fit_images(data: Dataset, shape: tuple[int, int, int]) -> Dataset:
    """`data` with every image at `shape` (height, width, channels); unchanged when it is."""
    if data.image_shape == tuple(shape):
        return data
    height, width, channels = shape
    parts = [
        resize_images(tf.constant(data.x[start : start + RESIZE_BATCH]), height, width, channels)
        .numpy()
        .astype(np.uint8)
        for start in range(0, len(data), RESIZE_BATCH)
    ]
    x = np.concatenate(parts) if parts else np.zeros((0, *shape), np.uint8)
    return Dataset(x, data.y, list(data.class_names), dict(data.source_sizes))
