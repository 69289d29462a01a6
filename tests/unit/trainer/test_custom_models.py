"""Bring your own model: a user's Keras architecture (sent as JSON) trains at its own image
size, exports, and the export loads in plain Keras and predicts; the built-in Keras
Applications build by name; images are resized to the spec's size and channels."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tass.contract.spec import TrainSpec
from tass.trainer.data import Dataset, image_folder
from tass.trainer.data.image_folder import load_image_folder
from tass.trainer.data.resize import fit_images
from tass.trainer.data.synthetic import synthetic_dataset
from tass.trainer.errors import DataError, ModelSpecError
from tass.trainer.evaluate import evaluate
from tass.trainer.models import build_model
from tass.trainer.saving import export_model
from tass.trainer.train import train
from tests.unit.trainer.trainer_testdata import encode_png


def users_model_json(size: int, channels: int = 3, classes: int = 4) -> str:
    """The five lines of the README: a functional Keras model with a residual add."""
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization()(x))
    return keras.Model(inputs, keras.layers.Dense(classes)(x)).to_json()  # logits out


@pytest.fixture(scope="module")
def four_classes() -> Dataset:
    return synthetic_dataset(320, 4, "train", seed=1)


def test_a_custom_architecture_trains_at_64x64_exports_and_predicts_in_plain_keras(
    four_classes: Dataset, tmp_path: Path
) -> None:
    spec = TrainSpec(
        model="keras-json",
        architecture=users_model_json(64),
        epochs=3,
        batch_size=32,
        optimizer="adam",
        learning_rate=0.01,
        schedule="constant",
        jit_compile="off",
        validation_split=0.0,
    )
    assert spec.image_size == 64  # taken from the architecture's input
    result = train(spec, four_classes)  # 32x32 synthetic images, resized to 64x64
    assert result.model.input_shape == (None, 64, 64, 3)
    assert result.training_flops_per_image > 3 * 2 * 32 * 32 * 3 * 3 * 3 * 8  # at 64x64
    path = export_model(result.model, tmp_path / "model.keras", result.class_names)
    loaded = keras.saving.load_model(path, safe_mode=True)  # plain Keras, no tass objects
    assert loaded.input_shape == (None, 64, 64, 3)
    probs = loaded.predict(np.zeros((2, 64, 64, 3), np.float32), verbose=0)
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    test = synthetic_dataset(120, 4, "test", seed=1)  # 32x32: evaluate resizes to the model
    # the downloaded file answers as the model that was trained (uint8 in, its own scaling)
    exported, trained = evaluate(loaded, test), evaluate(result.model, test)
    assert exported.confusion_matrix == trained.confusion_matrix
    assert exported.loss == pytest.approx(trained.loss, rel=1e-4)


def test_64x64_images_train_at_64x64_and_grayscale_is_one_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for label, name in enumerate(["a", "b"]):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for i in range(3):
            image = np.full((64, 64, 3), 60 + 120 * label, np.uint8)
            image[i, :, :] = 0  # a stripe, so the 64 rows matter
            (folder / f"{i}.png").write_bytes(encode_png(image))
    data = load_image_folder(str(tmp_path), "train", size=64)
    assert data.image_shape == (64, 64, 3)  # read as they are, not through 32x32
    assert data.source_sizes == {"64x64": 6}
    spec = TrainSpec(image_size=64, epochs=1, batch_size=4, width=0.25)
    spec = spec.model_copy(update={"jit_compile": "off", "validation_split": 0.0})
    result = train(spec, data)
    assert result.model.input_shape == (None, 64, 64, 3)
    larger = load_image_folder(str(tmp_path), "train", size=96)  # resized up when asked
    assert larger.image_shape == (96, 96, 3)
    monkeypatch.setattr(image_folder, "MAX_DECODED_BYTES", 6 * 64 * 64 * 3)
    assert load_image_folder(str(tmp_path), "train", size=64).image_shape == (64, 64, 3)
    with pytest.raises(DataError, match=r"6 images at 65x65 take .* over the limit"):
        load_image_folder(str(tmp_path), "train", size=65)
    gray = build_model(TrainSpec(image_size=48, channels=1), 2)
    assert gray.input_shape == (None, 48, 48, 1)
    assert fit_images(data, (48, 48, 1)).image_shape == (48, 48, 1)


def test_a_head_that_does_not_match_the_classes_fails_naming_both() -> None:
    spec = TrainSpec(model="keras-json", architecture=users_model_json(32, classes=3))
    with pytest.raises(ModelSpecError, match="its output has 3 classes, but the dataset has 5"):
        build_model(spec, 5)


def test_keras_applications_build_by_name_at_the_spec_size() -> None:
    for name in ("mobilenetv3-small", "efficientnetv2-b0"):
        model = build_model(TrainSpec(model=name, image_size=64), 7)
        assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 7)
    resnet = build_model(TrainSpec(model="resnet50"), 2)
    assert resnet.count_params() > 23_000_000


def test_a_keras_application_trains_from_scratch(four_classes: Dataset) -> None:
    spec = TrainSpec(
        model="mobilenetv3-small", epochs=1, batch_size=32, jit_compile="off", dropout=0.0
    )
    result = train(spec, four_classes.limit(64))
    assert result.epochs_completed == 1 and np.isfinite(result.history[-1]["loss"])


def test_the_stored_architecture_round_trips_through_json() -> None:
    text = users_model_json(32)
    spec = TrainSpec(model="keras-json", architecture=text)
    again = TrainSpec.model_validate(json.loads(spec.model_dump_json()))
    assert again == spec and again.architecture == json.loads(text)


def test_an_architecture_with_open_input_dimensions_is_built_at_the_spec_size() -> None:
    inputs = keras.Input((None, None, 1))
    x = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    config = keras.Model(inputs, keras.layers.Dense(3)(x)).to_json()
    model = build_model(TrainSpec(model="keras-json", architecture=config, image_size=40), 3)
    assert model.input_shape == (None, 40, 40, 1)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # not nested
    tuned = build_model(
        TrainSpec(model="keras-json", architecture=config, image_size=40, init_from="m"), 2
    )
    assert tuned.output_shape == (None, 2)  # fine-tuning: a new head for 2 classes
