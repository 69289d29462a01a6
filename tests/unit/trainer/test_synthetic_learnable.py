"""The synthetic source is learnable: the README's first job visibly learns, and what it
learns holds on images it never saw."""

from __future__ import annotations

import numpy as np

from tass.contract.spec import TrainSpec
from tass.trainer.data.synthetic import class_frequencies, synthetic_dataset
from tass.trainer.evaluate import evaluate
from tass.trainer.train import train


def test_the_readme_first_job_learns_far_above_chance() -> None:
    """`--data synthetic:2000 --epochs 3 --width 0.5`, every other setting the default: the
    validation split (inference mode) and a fresh test split both score well above 0.1."""
    spec = TrainSpec(epochs=3, width=0.5)
    result = train(spec, synthetic_dataset(2000, 10, "train", seed=spec.seed))
    assert result.final_metrics["val_accuracy"] >= 0.7, result.history
    assert result.final_metrics["val_accuracy_flip"] >= 0.7
    unseen = evaluate(result.model, synthetic_dataset(500, 10, "test"))
    assert unseen.accuracy >= 0.7, unseen.format()
    assert min(unseen.per_class_accuracy) > 0.3  # every class is learned, not a few


def test_every_class_has_its_own_pattern_up_to_100_classes() -> None:
    pairs = class_frequencies(100)
    assert len(set(pairs)) == 100 and (0, 0) not in pairs
    many = synthetic_dataset(200, 100)
    assert many.x.dtype == np.uint8 and set(many.y.tolist()) == set(range(100))
    # colour varies within a class (uniform means: a spread of ~29 levels per channel), so the
    # pattern, not the colour, identifies it
    data = synthetic_dataset(1000, 10)
    first = data.x[data.y == 0].reshape(-1, 32 * 32, 3).mean(axis=1)
    assert first.std(axis=0).min() > 15
