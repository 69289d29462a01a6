"""Architectures as data: the pure checks (no TensorFlow) that refuse a hostile Keras config
before anything of it is loaded, each naming the layer or the limit."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tass.contract.architecture import (
    MAX_ARCHITECTURE_BYTES,
    ArchitectureError,
    check_architecture,
)
from tass.contract.spec import TrainSpec
from tests.support.architectures import layer as _layer
from tests.support.architectures import small_cnn


def test_a_plain_config_is_accepted_with_its_parameter_and_flop_estimate() -> None:
    summary = check_architecture(small_cnn())
    assert summary.parameters == 3 * 3 * 3 * 8 + 8 + 8 * 10 + 10
    assert summary.forward_flops == 2 * 16 * 16 * 3 * 3 * 3 * 8 + 2 * 8 * 10
    assert summary.input_shape == (32, 32, 3)
    assert summary.output_shape == (10,)
    # the FLOPs follow the image size
    assert check_architecture(small_cnn(None), 64).forward_flops > 3 * summary.forward_flops


def test_a_keras_json_spec_takes_the_architectures_input_size_and_accepts_a_string() -> None:
    spec = TrainSpec(model="keras-json", architecture=json.dumps(small_cnn(64, 1)))
    assert (spec.image_size, spec.channels) == (64, 1)
    assert spec.architecture == small_cnn(64, 1)  # stored as the object, whichever was sent
    with pytest.raises(ValidationError, match=r"takes height 64, but spec.image_size is 32"):
        TrainSpec(model="keras-json", architecture=small_cnn(64), image_size=32)
    with pytest.raises(ValidationError, match="architecture is required"):
        TrainSpec(model="keras-json")
    with pytest.raises(ValidationError, match="architecture is for model 'keras-json'"):
        TrainSpec(architecture=small_cnn())


def _refusal(config: object) -> str:
    with pytest.raises(ValidationError) as info:
        TrainSpec(model="keras-json", architecture=config)
    return str(info.value)


def test_a_lambda_layer_is_refused_by_name() -> None:
    config = small_cnn()
    config["config"]["layers"].insert(
        2, _layer("Lambda", "sneaky", function={"class_name": "__lambda__", "config": "..."})
    )
    assert "layer 'sneaky' of class 'Lambda'" in _refusal(config)


def test_custom_objects_and_custom_activations_are_refused() -> None:
    custom = small_cnn()
    custom["config"]["layers"][1] = {
        "module": None,
        "class_name": "MyConv",
        "config": {"name": "mine"},
        "registered_name": "evil>MyConv",
    }
    assert "custom object ('evil>MyConv')" in _refusal(custom)
    activation = small_cnn()
    activation["config"]["layers"][1]["config"]["activation"] = {
        "module": "builtins",
        "class_name": "function",
        "config": "os.system",
        "registered_name": "function",
    }
    assert "is not a built-in activation" in _refusal(activation)
    module = small_cnn()
    module["config"]["layers"][2]["module"] = "os"
    assert "(module 'os') is not allowed" in _refusal(module)
    nested = small_cnn()
    nested["config"]["layers"][2] = {**small_cnn(), "module": "keras.layers"}
    assert "class 'Sequential' (module 'keras.layers') is not allowed" in _refusal(nested)


def test_ten_billion_parameters_are_refused_before_anything_is_built() -> None:
    config = small_cnn(units=10)
    layers = config["config"]["layers"]
    layers[2] = _layer("Flatten", "flat")
    layers[3] = _layer("Dense", "huge", units=1_000_000, activation="softmax")  # 2048 x 1e6
    layers.insert(3, _layer("Dense", "wide", units=10_000_000, activation="relu"))
    message = _refusal(config)
    assert "parameters by layer 'wide'" in message and "over the limit" in message


def test_flops_per_image_are_bounded() -> None:
    config = small_cnn()
    config["config"]["layers"][1]["config"].update(filters=4096, strides=[1, 1])
    layers = config["config"]["layers"]
    layers.insert(2, _layer("Conv2D", "big", filters=4096, kernel_size=[3, 3], padding="same"))
    assert "FLOPs per image by layer 'big'" in _refusal(config)


def test_a_ten_megabyte_config_is_refused_by_its_size() -> None:
    config = small_cnn()
    config["config"]["layers"][1]["config"]["padding_note"] = "x" * (10 * 1024 * 1024)
    message = _refusal(config)
    assert f"over the limit of {MAX_ARCHITECTURE_BYTES}" in message
    assert f"over the limit of {MAX_ARCHITECTURE_BYTES}" in _refusal(json.dumps(config))


def test_layers_nesting_and_shapes_are_checked() -> None:
    deep: Any = "leaf"
    for _ in range(sys.getrecursionlimit() // 4):
        deep = [deep]
    config = small_cnn()
    config["config"]["layers"][1]["config"]["extra"] = deep
    assert "nested more than" in _refusal(config)
    too_small = small_cnn(16)
    too_small["config"]["layers"].insert(
        2, _layer("MaxPooling2D", "pool_a", pool_size=[16, 16], strides=[16, 16])
    )
    assert "layer 'pool_a'" in _refusal(too_small)
    with pytest.raises(ArchitectureError, match="output must be one score per class"):
        config = small_cnn()
        del config["config"]["layers"][2:]
        check_architecture(config)
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        check_architecture("{not json")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.sampled_from(
        ["same", "valid", "relu", "Dense", "Conv2D", "Add", "keras.layers", "InputLayer", "x"]
    ),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["class_name", "module", "config", "layers", "name", "batch_shape", "units",
             "filters", "kernel_size", "strides", "padding", "inbound_nodes", "args", "axis",
             "keras_history", "registered_name", "activation", "output_layers", "pool_size"]
        ),
        children,
        max_size=6,
    ),
    max_leaves=40,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(config=_json, mutation=st.integers(0, 3))
def test_any_malformed_config_is_an_architecture_error_never_a_crash(config, mutation) -> None:
    """Garbage, or a real config with one part replaced by garbage, is refused cleanly (a 422
    at submit, never a 500)."""
    if mutation:
        real = small_cnn()
        real["config"]["layers"][mutation]["config"] = config
        config = real
    with contextlib.suppress(ArchitectureError):
        check_architecture(config)
    with contextlib.suppress(ValidationError):
        TrainSpec(model="keras-json", architecture=config)
