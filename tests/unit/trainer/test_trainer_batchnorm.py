"""Precise batch norm: after an epoch, the moving statistics are the mean of the batch
statistics under the current weights; nothing else in the model changes."""

from __future__ import annotations

import keras
import numpy as np

from tass.trainer.batchnorm import Recalibrator
from tass.trainer.randomness import seed_states


def small_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Dropout(0.5)(inputs)
    hidden = keras.layers.Conv2D(4, 3, use_bias=False)(hidden)
    hidden = keras.layers.BatchNormalization(momentum=0.9, name="bn")(hidden)
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))


def test_moving_statistics_become_the_mean_of_the_batch_statistics() -> None:
    model = small_model()
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, (16, 32, 32, 3)).astype(np.float32) for _ in range(3)]
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 7.0, np.float32))  # stale statistics
    weights = [w.numpy().copy() for w in model.trainable_weights]
    seeds = [s.numpy().copy() for s in seed_states(model)]

    assert Recalibrator(model)(iter(batches)) == 3

    conv = keras.Model(model.inputs, model.get_layer("bn").input)
    outputs = [np.asarray(conv(b, training=False)) for b in batches]  # dropout is not applied
    np.testing.assert_allclose(
        bn.moving_mean.numpy(),
        np.mean([o.mean(axis=(0, 1, 2)) for o in outputs], axis=0),
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        bn.moving_variance.numpy(),
        np.mean([o.var(axis=(0, 1, 2)) for o in outputs], axis=0),
        rtol=1e-3,
        atol=1e-6,
    )
    for before, after in zip(weights, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(seeds, seed_states(model), strict=True):
        np.testing.assert_array_equal(before, after.numpy())  # no random stream advanced
    assert bn.momentum == 0.9 and model.layers[1].rate == 0.5  # restored


def test_a_model_without_batch_norm_is_left_alone() -> None:
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    assert Recalibrator(model)(iter([np.zeros((2, 32, 32, 3), np.float32)])) == 0
