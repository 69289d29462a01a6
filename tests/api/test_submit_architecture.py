"""Submitting your own architecture (spec.model keras-json): a plain Keras config is stored as
sent; a hostile one is a 422 naming the layer or the limit, checked without TensorFlow."""

from __future__ import annotations

import json

from tass.core.queue import TRAIN_TASK
from tests.support.architectures import layer as _layer
from tests.support.architectures import small_cnn

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def submit(client, spec):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", json={"type": "train", "spec": spec, "dataset": SYNTHETIC})


def test_a_keras_json_architecture_is_accepted_as_an_object_or_a_string(client, drain_tasks):
    as_string = submit(client, {"model": "keras-json", "architecture": json.dumps(small_cnn(64))})
    assert as_string.status_code == 202, as_string.text
    job = as_string.json()
    assert job["spec"]["architecture"] == small_cnn(64)
    assert job["spec"]["image_size"] == 64  # the architecture's own input size
    response = submit(client, {"model": "keras-json", "architecture": small_cnn(None, 1)})
    assert response.status_code == 202
    assert response.json()["spec"]["channels"] == 1
    assert [task for task, _ in drain_tasks()] == [TRAIN_TASK, TRAIN_TASK]


def own(architecture: object) -> dict[str, object]:
    return {"model": "keras-json", "architecture": architecture}


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return json.dumps(response.json())


def test_hostile_architectures_are_422_naming_the_layer_or_the_limit(client, drain_tasks):
    lam = small_cnn()
    lam["config"]["layers"].insert(2, _layer("Lambda", "sneaky", function="import os"))
    assert "layer 'sneaky' of class 'Lambda'" in _detail(submit(client, own(lam)))
    custom = small_cnn()
    custom["config"]["layers"][2]["registered_name"] = "mine>Pool"
    assert "custom object" in _detail(submit(client, own(custom)))
    huge = small_cnn()
    huge["config"]["layers"][2] = _layer("Flatten", "flat")
    huge["config"]["layers"].insert(3, _layer("Dense", "wide", units=10**7))
    message = _detail(submit(client, own(huge)))
    assert "parameters by layer 'wide'" in message and "architecture" in message
    big = small_cnn()
    big["config"]["layers"][1]["config"]["note"] = "x" * (10 * 1024 * 1024)
    too_big = submit(client, own(big))
    assert too_big.status_code == 413  # the body limit refuses it before it is parsed
    assert drain_tasks() == []
