"""`evaluate`: loss, accuracy, per-class accuracy and confusion matrix of a model on a dataset."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from tass.trainer.data import Dataset
from tass.trainer.data.resize import fit_images
from tass.trainer.errors import EvaluationStopped
from tass.trainer.pipeline import eval_dataset
from tass.trainer.saving import takes_pixels

# called after every batch with (batches done, batches in all); False stops the evaluation
EvalHook = Callable[[int, int], bool]


class _BatchHook(keras.callbacks.Callback):
    """Asks the hook after every predicted batch and stops `predict` when it says no."""

    def __init__(self, hook: EvalHook, batches: int, done_before: int = 0) -> None:
        super().__init__()
        self.hook, self.batches, self.done_before = hook, batches, done_before
        self.stopped_after: int | None = None

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        done = self.done_before + batch + 1
        if not self.hook(done, self.batches):
            self.stopped_after = done
            self.model.stop_predicting = True


@dataclass
class EvalResult:
    """Metrics of one evaluation; confusion_matrix[true][predicted] counts examples."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    num_examples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values."""
        return asdict(self)

    def format(self) -> str:
        """A human-readable report (metrics, per-class accuracy, confusion matrix)."""
        lines = [
            f"examples {self.num_examples}  loss {self.loss:.4f}  accuracy {self.accuracy:.4f}",
            "per-class accuracy:",
        ]
        name_width = max((len(n) for n in self.class_names), default=5)
        for name, acc in zip(self.class_names, self.per_class_accuracy, strict=True):
            lines.append(f"  {name:<{name_width}}  {acc:.4f}")
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        for name, row in zip(self.class_names, self.confusion_matrix, strict=True):
            lines.append(f"  {name:<{name_width}}  " + " ".join(f"{v:5d}" for v in row))
        return "\n".join(lines)


def check_classes(model: keras.Model, data: Dataset, class_names: list[str] | None) -> None:
    """The data's classes must be the model's, in the model's output order."""
    if class_names is not None and list(class_names) != list(data.class_names):
        raise ValueError(
            f"the model was trained on classes {list(class_names)} (in this order) "
            f"but the data has {list(data.class_names)}"
        )
    outputs = int(model.output_shape[-1])
    if outputs != data.num_classes:
        raise ValueError(
            f"the model predicts {outputs} classes but the data has {data.num_classes} "
            f"({', '.join(data.class_names)})"
        )


def predict_probabilities(
    model: keras.Model,
    data: Dataset,
    batch_size: int,
    hook: EvalHook | None,
    *,
    flip: bool = False,
) -> np.ndarray:
    """The model's outputs for every example; raises EvaluationStopped if `hook` says stop.
    `flip`: the mean of the outputs for each image and its mirror image (test-time flip
    augmentation; twice the work). A model that takes uint8 pixels (exported models) gets them
    as they are; one that takes floats (training models, older exports) gets them in [0, 1]."""
    scaled = not takes_pixels(model)
    views = [False, True] if flip else [False]
    per_view = math.ceil(len(data) / batch_size)
    total = per_view * len(views)
    probs = np.zeros((len(data), int(model.output_shape[-1])), np.float64)
    for view, mirrored in enumerate(views):
        callbacks = [] if hook is None else [_BatchHook(hook, total, view * per_view)]
        out = model.predict(
            eval_dataset(data, batch_size, mirrored=mirrored, scaled=scaled),
            verbose=0,
            callbacks=callbacks,
        )
        if callbacks and callbacks[0].stopped_after is not None:
            done = callbacks[0].stopped_after
            raise EvaluationStopped(f"evaluation stopped after {done} of {total} batches")
        probs += np.asarray(out, np.float64)
    return probs / len(views)


def evaluate(
    model: keras.Model,
    data: Dataset,
    batch_size: int = 256,
    *,
    class_names: list[str] | None = None,
    hook: EvalHook | None = None,
    flip: bool = False,
) -> EvalResult:
    """Evaluate `model` (probabilities out) on `data`; loss is plain cross-entropy.

    `class_names`, the model's classes in output order, must equal the data's: a dataset
    whose classes differ (or come in another order) would give silently wrong metrics.
    `hook(done, total)` runs after every batch; returning False stops the evaluation.
    `flip` averages each image's outputs with its mirror image's (test-time augmentation)."""
    num_classes = data.num_classes
    check_classes(model, data, class_names)
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    height, width, channels = model.input_shape[1:]
    if None not in (height, width, channels):  # the size and colour the model takes
        data = fit_images(data, (height, width, channels))
    probs = predict_probabilities(model, data, batch_size, hook, flip=flip)
    labels = data.y.astype(np.int64)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    predicted = probs.argmax(axis=1)
    confusion = np.bincount(
        labels * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    counts = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), counts, out=np.zeros(num_classes), where=counts > 0)
    return EvalResult(
        loss=float(-np.log(picked).mean()),
        accuracy=float((predicted == labels).mean()),
        per_class_accuracy=[float(a) for a in per_class],
        confusion_matrix=confusion.astype(int).tolist(),
        class_names=list(data.class_names),
        num_examples=len(labels),
    )
