"""tf.data input pipelines: uint8 arrays in memory, batched augmentation, scaling on the fly."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tass.contract.spec import Augmentation
from tass.trainer.data import Dataset


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches per epoch; the last one may be smaller."""
    return max(1, math.ceil(num_examples / batch_size))


def _random_crop(images: tf.Tensor, pad: int, mode: str, seed: tf.Tensor) -> tf.Tensor:
    """Pad each side by `pad` and crop back to the images' size at a random offset per image."""
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=mode)
    batch = tf.shape(images)[0]
    offsets = tf.random.stateless_uniform(
        [batch, 2], seed=seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)  # (B, height)
    cols = offsets[:, 1:] + tf.range(width)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def augment(images: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Random flip, reflect-pad + crop and zero-fill translation of a uint8 batch (stateless)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if aug.horizontal_flip:
        flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed=seeds[0]) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if aug.crop_padding:
        images = _random_crop(images, aug.crop_padding, "REFLECT", seeds[1])
    shift = round(aug.translate * images.shape[2])  # a fraction of the width
    if shift:
        images = _random_crop(images, shift, "CONSTANT", seeds[2])
    return images


def scale(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return tf.cast(images, tf.float32) * (1.0 / 255.0)


def train_dataset(
    data: Dataset,
    batch_size: int,
    augmentation: Augmentation | None,
    *,
    seed: int,
    first_epoch: int,
    epochs: int,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches for epochs first_epoch..epochs-1 (0-based), each epoch freshly shuffled, less
    the first `skip_batches` batches of epoch first_epoch (already trained before a stop).

    Shuffle order and augmentation depend only on (seed, epoch, batch), so a run resumed at
    epoch k, batch b sees exactly the batches an uninterrupted run would have seen.
    """
    x = tf.constant(data.x)
    y = tf.constant(data.y.astype(np.int32))
    n = len(data)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=epoch_seed)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda i, idx: (epoch, i, idx))

    def load(epoch: tf.Tensor, i: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.gather(x, idx)
        if augmentation is not None:
            batch_seed = tf.stack([tf.constant(seed, tf.int64) + 7919, epoch * 1_000_003 + i])
            images = augment(images, augmentation, batch_seed)
        return scale(images), tf.gather(y, idx)

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches).skip(skip_batches)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_dataset(
    data: Dataset, batch_size: int, *, mirrored: bool = False, scaled: bool = True
) -> tf.data.Dataset:
    """Unshuffled, unaugmented (images, labels) batches scaled to [0, 1] (`scaled=False`: the
    uint8 pixels, for models that scale them themselves); `mirrored` flips every image
    left-right (the second view of test-time flip augmentation)."""
    ds = tf.data.Dataset.from_tensor_slices((data.x, data.y.astype(np.int32))).batch(batch_size)

    def prepare(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = scale(x) if scaled else x
        return (tf.reverse(images, axis=[2]) if mirrored else images), y

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
