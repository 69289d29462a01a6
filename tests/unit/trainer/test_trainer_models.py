"""The model zoo builds on CIFAR-sized input; the textbook AlexNet does not (regression)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from trainer_testdata import tiny_spec

from tass.contract.spec import APPLICATIONS, MODEL_NAMES, TrainSpec
from tass.trainer.models import (
    MODELS,
    alexnet_cifar,
    alexnet_seed,
    build_model,
    textbook_alexnet_layers,
)


def test_every_spec_model_name_is_registered() -> None:
    # the Keras Applications and keras-json: tests/unit/trainer/test_custom_models.py
    assert set(MODELS) | set(APPLICATIONS) | {"keras-json"} == set(MODEL_NAMES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_builds_on_32x32x3_with_10_outputs(name: str) -> None:
    model = build_model(TrainSpec(model=name, width=0.25))
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 10)
    probs = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32)))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_textbook_alexnet_cannot_build_on_32x32() -> None:
    """The issue's unmodified layer list: the last 3x3/2 'valid' pool gets a 1x1 map."""
    with pytest.raises(ValueError):
        keras.Sequential([keras.Input((32, 32, 3)), *textbook_alexnet_layers()])


def test_alexnet_seed_is_the_textbook_network_with_padded_pools() -> None:
    model = alexnet_seed(10)
    assert model.count_params() == 21_622_154
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [pool.padding for pool in pools] == ["same", "same", "same"]


def test_options_change_the_network() -> None:
    plain = alexnet_cifar(10, width=0.5, batch_norm=False)
    normed = alexnet_cifar(10, width=0.5, batch_norm=True, dropout=0.3, l2=1e-4)
    wider = alexnet_cifar(10, width=1.0)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in normed.layers)
    dropouts = [layer for layer in normed.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropouts] == [0.3, 0.3]
    normed(np.zeros((1, 32, 32, 3), np.float32))
    assert len(normed.losses) > 0  # the L2 penalties
    assert wider.count_params() > 3 * plain.count_params()
    seeded = build_model(tiny_spec(model="alexnet-seed", batch_norm=True, dropout=0.2))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in seeded.layers)


def test_output_layer_stays_float32_under_mixed_precision() -> None:
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = alexnet_cifar(10, width=0.25)
        assert model.layers[0].compute_dtype == "bfloat16"
        out = model(np.zeros((1, 32, 32, 3), np.float32))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
