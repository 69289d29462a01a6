"""evaluate() metrics, and models that round-trip through .keras files and SavedModel export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trainer_testdata import tiny_spec

from tass.trainer.data import Dataset
from tass.trainer.data.synthetic import synthetic_dataset
from tass.trainer.errors import EvaluationStopped, ModelFileError
from tass.trainer.evaluate import evaluate, predict_probabilities
from tass.trainer.saving import (
    export_model,
    export_savedmodel,
    load_model,
    read_class_names,
    save_model,
    takes_pixels,
)
from tass.trainer.train import train
from tests.support.models import legacy_model_file


@pytest.fixture(scope="module")
def trained(easy_data: Dataset):  # type: ignore[no-untyped-def]
    return train(tiny_spec(epochs=3, label_smoothing=0.1), easy_data)


@pytest.fixture(scope="module")
def test_data() -> Dataset:
    data = synthetic_dataset(130, 10, "test")
    return data.subset(np.flatnonzero(data.y != 9))  # uneven class counts, one class absent


def test_confusion_matrix_rows_sum_to_class_counts(trained, test_data: Dataset) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(trained.model, test_data, batch_size=32)
    matrix = np.array(result.confusion_matrix)
    assert matrix.shape == (10, 10)
    assert matrix.sum(axis=1).tolist() == np.bincount(test_data.y, minlength=10).tolist()
    assert result.num_examples == len(test_data) == matrix.sum()
    assert result.accuracy == pytest.approx(np.trace(matrix) / matrix.sum())
    assert result.per_class_accuracy[9] == 0.0  # no examples: reported as 0, not NaN
    assert result.per_class_accuracy[0] == pytest.approx(matrix[0, 0] / matrix[0].sum())
    assert result.accuracy > 0.5 and 0 < result.loss < 2.3
    assert json.loads(json.dumps(result.to_dict()))["class_names"] == test_data.class_names
    assert "confusion matrix" in result.format()


def test_evaluate_refuses_a_class_count_mismatch(trained) -> None:  # type: ignore[no-untyped-def]
    three = synthetic_dataset(30, 3)
    with pytest.raises(ValueError, match="10 classes"):
        evaluate(trained.model, three)


def test_evaluate_refuses_classes_in_another_order_naming_both_lists(trained) -> None:  # type: ignore[no-untyped-def]
    data = synthetic_dataset(30, 10)
    shuffled = Dataset(data.x, data.y, list(reversed(data.class_names)))
    with pytest.raises(ValueError) as refused:
        evaluate(trained.model, shuffled, class_names=trained.class_names)
    assert str(trained.class_names) in str(refused.value)
    assert str(shuffled.class_names) in str(refused.value)
    assert evaluate(trained.model, data, class_names=trained.class_names).num_examples == 30


@pytest.mark.parametrize(
    ("examples", "flip", "stop_at", "total"),
    [
        (100, False, 2, 10),
        (30, True, 5, 6),  # a flip evaluation's progress counts both passes
    ],
)
def test_an_evaluation_stops_within_one_batch_of_its_hook_saying_so(  # type: ignore[no-untyped-def]
    trained, examples: int, flip: bool, stop_at: int, total: int
) -> None:
    data = synthetic_dataset(examples, 10)
    calls: list[tuple[int, int]] = []

    def hook(done: int, total: int) -> bool:
        calls.append((done, total))
        return done < stop_at

    with pytest.raises(EvaluationStopped, match=f"after {stop_at} of {total} batches"):
        evaluate(trained.model, data, batch_size=10, hook=hook, flip=flip)
    assert calls == [(n, total) for n in range(1, stop_at + 1)]


def test_flip_evaluation_averages_each_image_with_its_mirror(trained) -> None:  # type: ignore[no-untyped-def]
    data = synthetic_dataset(40, 10)
    mirror = Dataset(np.ascontiguousarray(data.x[:, :, ::-1, :]), data.y, data.class_names)
    plain = predict_probabilities(trained.model, data, 16, None)
    mirrored = predict_probabilities(trained.model, mirror, 16, None)
    assert not np.allclose(plain, mirrored), "the test needs a model that is not symmetric"

    both = predict_probabilities(trained.model, data, 16, None, flip=True)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    expected = float(((plain + mirrored).argmax(axis=1) == data.y).mean())
    assert evaluate(trained.model, data, batch_size=16, flip=True).accuracy == expected


def test_a_finished_run_reports_its_validation_accuracy_with_flips(trained) -> None:  # type: ignore[no-untyped-def]
    flipped = trained.final_metrics["val_accuracy_flip"]
    assert 0.0 <= flipped <= 1.0
    assert trained.final_metrics["val_accuracy"] == trained.history[-1]["val_accuracy"]


def test_save_then_load_gives_identical_predictions(
    trained, test_data: Dataset, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = save_model(trained.model, tmp_path / "sub" / "model.keras")
    loaded = load_model(path)  # safe mode, with the custom loss and schedule of training
    x = test_data.x[:40].astype(np.float32) / 255.0
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), trained.model.predict(x, verbose=0))
    assert int(loaded.optimizer.iterations) == int(trained.model.optimizer.iterations)


def test_savedmodel_export_takes_uint8_pixels_like_the_keras_export(
    trained, test_data: Dataset, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    directory = export_savedmodel(trained.model, tmp_path / "export")
    served = tf.saved_model.load(str(directory))
    pixels = test_data.x[:8]
    np.testing.assert_allclose(
        served.serve(tf.constant(pixels)).numpy(),
        trained.model.predict(pixels.astype(np.float32) / 255.0, verbose=0),
        atol=1e-5,
    )


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"missing\.keras"):
        load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match=r"bad\.keras"):
        load_model(bad)


USER_SCRIPT = """
import json, sys, zipfile, numpy as np, keras
model = keras.models.load_model(sys.argv[1])
x, y = np.load(sys.argv[2]), np.load(sys.argv[3])
metrics = model.evaluate(x, y, verbose=0, return_dict=True)
class_names = json.loads(zipfile.ZipFile(sys.argv[1]).read("metadata.json"))["class_names"]
probs = model.predict(x, verbose=0)
np.save(sys.argv[4], probs)
assert not [n for n in sys.modules if n.split(".")[0] in ("trainer", "tass", "core")]
print(json.dumps({"metrics": metrics, "class_names": class_names, "dtype": str(x.dtype)}))
"""


def test_an_exported_model_evaluates_uint8_images_in_plain_keras_without_this_package(
    trained, test_data: Dataset, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """What a user does with a downloaded model: a fresh Python, no `tass` on the path, the
    uint8 images they have, `evaluate` without compiling, the class names from the file."""
    import subprocess
    import sys

    path = export_model(trained.model, tmp_path / "model.keras", trained.class_names)
    np.save(tmp_path / "x.npy", test_data.x)  # uint8 0-255, as images come
    np.save(tmp_path / "y.npy", test_data.y)
    files = [str(tmp_path / name) for name in ("x.npy", "y.npy", "p.npy")]
    out = subprocess.run(
        [sys.executable, "-c", USER_SCRIPT, str(path), *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["dtype"] == "uint8"
    assert report["class_names"] == trained.class_names == read_class_names(path)
    ours = evaluate(trained.model, test_data)  # the training model, on [0, 1] floats
    assert report["metrics"]["accuracy"] == pytest.approx(ours.accuracy, abs=1e-6)
    assert report["metrics"]["loss"] == pytest.approx(ours.loss, rel=1e-4)
    assert ours.accuracy > 0.5  # well above chance (0.1): the uint8 input is not misread
    expected = trained.model.predict(test_data.x.astype(np.float32) / 255.0, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-5, atol=1e-6)


def test_evaluate_gives_the_same_metrics_for_the_export_and_an_older_float_export(
    trained, test_data: Dataset, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Models exported before the uint8 contract (float [0, 1] input, uncompiled, class names
    in their own member) still load and evaluate: the input dtype says how to feed them."""
    new = load_model(export_model(trained.model, tmp_path / "new.keras", trained.class_names))
    old = load_model(legacy_model_file(trained.model, tmp_path / "old.keras", trained.class_names))
    assert takes_pixels(new) and not takes_pixels(old) and old.compiled is False
    assert read_class_names(tmp_path / "old.keras") == trained.class_names
    results = [
        evaluate(m, test_data, class_names=trained.class_names, flip=True) for m in (new, old)
    ]
    assert results[0].accuracy == pytest.approx(results[1].accuracy, abs=1e-6)
    assert results[0].confusion_matrix == results[1].confusion_matrix


def test_a_fresh_process_loads_a_training_saved_model(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Only trainer.saving imported: the custom loss and LR schedule must still deserialise."""
    import subprocess
    import sys

    path = save_model(trained.model, tmp_path / "model.keras")
    code = (
        "import sys; from trainer.saving import load_model; "
        "m = load_model(sys.argv[1]); print(int(m.optimizer.iterations), m.loss.label_smoothing)"
    )
    repo = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(int(trained.model.optimizer.iterations)), "0.1"]
