"""TensorBoard event files of a training run: Keras's own TensorBoard callback, bounded.

Scalars (loss, accuracy, their validation values and the learning rate) at each epoch's end
and every few steps, weight histograms at epoch ends, and the model's graph once, under
`train/` and `validation/` of the log folder. Bounded: at most MAX_STEP_POINTS step points
and MAX_HISTOGRAM_EPOCHS histogram epochs per run, whatever its length."""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras

MAX_STEP_POINTS = 1000
MAX_HISTOGRAM_EPOCHS = 50


class BoundedTensorBoard(keras.callbacks.TensorBoard):
    """Keras's callback, plus the model's graph and with epoch summaries always written.

    With an integer `update_freq` Keras records only on steps that are its multiples, and
    would drop an epoch's scalars and histograms whenever the epoch ends between two of them.
    Keras 3 writes only the conceptual (Keras) graph: the forward pass's op graph is traced
    and written once here, for TensorBoard's Graphs dashboard. A resumed run's step scalars go
    on from `first_step` (the global steps done before), not from 0 again."""

    def __init__(self, *args: object, first_step: int = 0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.first_step = first_step

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self._global_train_batch = self.first_step
        if self.write_graph:
            self._write_op_graph()

    def _write_op_graph(self) -> None:
        import tensorflow as tf

        specs = [tf.TensorSpec(shape=t.shape, dtype=t.dtype) for t in self.model.inputs]
        traced = tf.function(lambda *inputs: self.model(*inputs, training=False))
        graph = traced.get_concrete_function(*specs).graph
        with self._train_writer.as_default(), self.summary.record_if(True):
            self.summary.graph(graph)

    def close(self) -> None:
        """Flush and close the event files, also of a run that fit() left by an exception (a
        stop or cancel request: Keras then never calls on_train_end, and what the writers
        buffered, the epoch summaries included, would be lost). Safe to call twice."""
        while self.update_freq != "epoch" and self._prev_summary_state:
            self._pop_writer()
        self._close_writers()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with self.summary.record_if(True):
            super().on_epoch_end(epoch, logs)


def tensorboard_callback(
    log_dir: str | os.PathLike,
    *,
    epochs: int,
    steps_per_epoch: int,
    every_steps: int = 20,
    first_step: int = 0,
) -> BoundedTensorBoard:
    """Keras's TensorBoard callback writing into `log_dir`, with bounded frequencies; a
    resumed run passes the global steps already done as `first_step`."""
    total_steps = max(1, epochs * steps_per_epoch)
    return BoundedTensorBoard(
        first_step=first_step,
        log_dir=str(log_dir),
        histogram_freq=max(1, math.ceil(epochs / MAX_HISTOGRAM_EPOCHS)),
        write_graph=True,
        update_freq=max(every_steps, math.ceil(total_steps / MAX_STEP_POINTS)),
    )


def event_files(log_dir: str | os.PathLike) -> list[Path]:
    """The event files below `log_dir`, in a stable order."""
    root = Path(log_dir)
    return sorted(p for p in root.rglob("events.out.tfevents.*") if p.is_file())
