"""Losses, registered so that models compiled with them load in safe mode."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="tass")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing."""

    def __init__(
        self, label_smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        one_hot = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, [-1]), "int32"), classes
        )
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
