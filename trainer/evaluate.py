"""`evaluate`: loss, accuracy, per-class accuracy and confusion matrix of a model on a dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from trainer.data import Dataset
from trainer.pipeline import eval_dataset


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


def evaluate(model: keras.Model, data: Dataset, batch_size: int = 256) -> EvalResult:
    """Evaluate `model` (probabilities out) on `data`; loss is plain cross-entropy."""
    num_classes = data.num_classes
    outputs = int(model.output_shape[-1])
    if outputs != num_classes:
        raise ValueError(
            f"the model predicts {outputs} classes but the data has {num_classes} "
            f"({', '.join(data.class_names)})"
        )
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    probs = np.asarray(model.predict(eval_dataset(data, batch_size), verbose=0), np.float64)
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
