"""Fine-tuning: a network started from a trained model's weights (a new head for other
classes, chosen layers frozen) learns a small related 2-class task better than the same
network trained from scratch for the same epochs."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tass.contract.spec import TrainSpec
from tass.trainer.data import Dataset
from tass.trainer.data.synthetic import synthetic_dataset
from tass.trainer.errors import ModelSpecError
from tass.trainer.evaluate import evaluate
from tass.trainer.finetune import head_layer, weighted_layers
from tass.trainer.saving import export_model
from tass.trainer.train import train


def _spec(**fields: object) -> TrainSpec:
    base: dict[str, object] = {
        "width": 0.25, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.003,
        "schedule": "constant", "jit_compile": "off", "validation_split": 0.0,
        "augmentation": {"horizontal_flip": False, "crop_padding": 0}, "seed": 3,
    }  # fmt: skip
    return TrainSpec.model_validate({**base, **fields})


def two_of_ten(split: str, count: int) -> Dataset:
    """Classes 2 and 7 of the 10-class synthetic set (fresh noise), relabelled 0 and 1: a
    small task whose classes share features with the pretraining classes."""
    data = synthetic_dataset(count * 5, 10, split, seed=11)
    keep = np.flatnonzero(np.isin(data.y, [2, 7]))
    return Dataset(data.x[keep], (data.y[keep] == 7).astype(np.int64), ["two", "seven"])


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pretrain = synthetic_dataset(600, 10, "train", seed=0)
    result = train(_spec(epochs=3), pretrain)
    path = tmp_path_factory.mktemp("parent") / "model.keras"
    return export_model(result.model, path, result.class_names)


def test_fine_tuning_beats_training_from_scratch_on_a_small_related_task(parent: Path) -> None:
    small, test = two_of_ten("train", 24), two_of_ten("test", 80)
    scratch = train(_spec(epochs=2), small)
    tuned = train(
        _spec(epochs=2, init_from="parent", freeze="all-but-head"), small, init_from=parent
    )
    scratch_accuracy = evaluate(scratch.model, test).accuracy
    tuned_accuracy = evaluate(tuned.model, test).accuracy
    assert tuned.model.output_shape == (None, 2)  # a new head for the two classes
    assert tuned_accuracy > scratch_accuracy + 0.1, (tuned_accuracy, scratch_accuracy)
    assert tuned_accuracy > 0.85
    frozen = [layer.name for layer in tuned.model.layers if layer.weights and not layer.trainable]
    assert frozen and head_layer(tuned.model).trainable
    assert head_layer(tuned.model).name not in frozen


def test_starting_weights_must_fit_the_network(parent: Path) -> None:
    small = two_of_ten("train", 10)
    with pytest.raises(ModelSpecError, match="init_from: layer 'conv1' has weights"):
        train(_spec(epochs=1, width=0.5, init_from="parent"), small, init_from=parent)
    with pytest.raises(ModelSpecError, match=r"freeze: the network has no layers \['nope'\]"):
        train(_spec(epochs=1, init_from="parent", freeze=["nope"]), small, init_from=parent)


def test_a_fine_tuning_run_resumes_with_its_layers_still_frozen(
    parent: Path, tmp_path: Path
) -> None:
    small = two_of_ten("train", 24)
    spec = _spec(epochs=2, init_from="parent", freeze="all-but-head")
    train(spec, small, init_from=parent, checkpoint_dir=tmp_path)
    resumed = train(spec, small, resume_from=tmp_path / "epoch-0001", init_from=parent)
    assert resumed.epochs_completed == 2
    parent_model = keras.saving.load_model(parent, compile=False)
    conv1 = resumed.model.get_layer("conv1")
    assert not conv1.trainable
    # the exported parent wraps the trained network behind its uint8 input: find conv1 inside
    (parent_conv1,) = [layer for layer in weighted_layers(parent_model) if layer.name == "conv1"]
    np.testing.assert_array_equal(conv1.get_weights()[0], parent_conv1.get_weights()[0])
