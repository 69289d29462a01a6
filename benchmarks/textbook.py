"""The textbook Keras AlexNet recipe from issue 2 (with padded pools so it builds on 32x32)."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np


class WallClock(keras.callbacks.Callback):
    """Per-epoch wall time, and a stop after `max_seconds` of training (checked every batch)."""

    def __init__(self, max_seconds: float | None, start: float) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self.start = start
        self.rows: list[dict[str, Any]] = []
        self.epoch_start = 0.0
        self.capped = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.max_seconds and time.perf_counter() - self.start > self.max_seconds:
            self.capped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        row = {"chunk": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["epoch_seconds"] = now - self.epoch_start
        row["elapsed_seconds"] = now - self.start
        row["partial"] = self.capped
        self.rows.append(row)
        print("textbook", row, flush=True)


def textbook_model(num_classes: int = 10) -> keras.Model:
    """The issue's layer list; the only change: pools use padding='same' (else it cannot build)."""
    from tass.trainer.models import alexnet_seed

    return alexnet_seed(num_classes, batch_norm=False, dropout=0.5)


def run_textbook(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    max_seconds: float | None = None,
    validate_every: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """images / 255, compile(adam, sparse CE, accuracy), fit on NumPy float arrays.

    `validate_every` (steps) reports validation more often than once per pass over the data,
    for runs that are capped before the first epoch ends; it does not change the training.
    """
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_dtype_policy("float32")
    model = textbook_model(int(y_train.max()) + 1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xt = x_train.astype("float32") / 255.0
    xv = x_val.astype("float32") / 255.0
    clock = WallClock(max_seconds, time.perf_counter())
    steps = -(-len(xt) // batch_size)
    chunks = epochs if not validate_every else -(-epochs * steps // validate_every)
    model.fit(
        xt,
        y_train,
        epochs=chunks,
        steps_per_epoch=validate_every,
        batch_size=batch_size,
        validation_data=(xv, y_val),
        callbacks=[clock],
        verbose=0,
    )
    return clock.rows
