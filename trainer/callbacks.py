"""The Keras callback that reports progress, writes checkpoints and honours cancellation and
requests to stop (preemption: checkpoint now, mid-epoch if need be, and stop)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tass.contract.progress import Progress, format_duration
from tass.trainer.checkpoint import write_checkpoint, write_step_checkpoint

Hook = Callable[[Progress], "bool | None"]


class Cancelled(Exception):
    """Raised inside fit() when the hook returns False; train() catches it."""


class Preempted(Exception):
    """Raised inside fit() once a requested stop has been checkpointed; train() catches it."""


@dataclass(frozen=True)
class StopCheckpoint:
    """The checkpoint a run wrote when it was told to stop: `epoch` epochs done, then
    `step_in_epoch` batches of the next (0: at an epoch end, `path` is that epoch's
    checkpoint, which the hook has already seen)."""

    path: Path
    epoch: int
    step_in_epoch: int
    global_step: int


def metric_values(model: keras.Model) -> list[Any]:
    """The running state of the model's metrics (this epoch's loss and accuracy so far)."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in model.metrics_variables]


def add_metric_values(model: keras.Model, values: list[Any]) -> None:
    """Add a stopped run's running metric values to this run's after its first batch: in
    float32, as the metric's own update would have, so each sum is bitwise the uninterrupted
    run's (the compiled metrics only exist once a batch has run, so they cannot be set before)."""
    variables = model.metrics_variables
    if len(variables) != len(values):
        raise ValueError(f"checkpoint has {len(values)} metric values, model {len(variables)}")
    for variable, value in zip(variables, values, strict=True):
        current = np.asarray(keras.ops.convert_to_numpy(variable))
        variable.assign(np.asarray(value, dtype=current.dtype) + current)


def format_epoch(row: dict[str, Any], epochs: int, eta: float | None) -> str:
    """One human line per epoch, e.g. for the CLI."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row['learning_rate']:.3g}")
    parts.append(f"{row['epoch_seconds']:.1f}s ({row['images_per_sec']:.0f} img/s)")
    parts.append(f"eta {format_duration(eta)}")
    return "  ".join(parts)


class TrainingMonitor(keras.callbacks.Callback):
    """Builds the history rows, checkpoints each epoch and calls the progress hook."""

    def __init__(
        self,
        *,
        epochs: int,
        first_epoch: int,
        steps_per_epoch: int,
        num_examples: int,
        batch_size: int,
        flops_per_image: int = 0,
        history: list[dict[str, Any]],
        hook: Hook | None,
        progress_every: int,
        checkpoint_dir: Path | None,
        state: Callable[[list[dict[str, Any]]], dict[str, Any]],
        log: Callable[[str], None] | None,
        stop_requested: Callable[[], bool] | None = None,
        resume_step: int = 0,
        resume_metrics: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.epochs = epochs
        self.first_epoch = first_epoch
        self.steps_per_epoch = steps_per_epoch
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.flops_per_image = flops_per_image
        self.history = history
        self.hook = hook
        self.progress_every = max(1, progress_every)
        self.checkpoint_dir = checkpoint_dir
        self.state = state
        self.log = log
        # a stop request is honoured only where a checkpoint can be written
        self.stop_requested = stop_requested if checkpoint_dir is not None else None
        self.resume_step = resume_step  # batches of epoch first_epoch + 1 already trained
        self.resume_metrics = resume_metrics
        self.stopped_at: StopCheckpoint | None = None
        self.run_start = 0.0
        self.epoch_start = 0.0
        self.epoch = 0  # 1-based, current
        self.step = 0
        self.offset = 0  # batches of the current epoch trained before this run
        self.pending_metrics: list[Any] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.run_start:  # a resumed run fits twice (the rest of an epoch, then the rest)
            self.run_start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        resumed = self.epoch == self.first_epoch + 1 and self.resume_step > 0
        self.offset = self.resume_step if resumed else 0
        self.step = self.offset
        self.pending_metrics = self.resume_metrics if resumed else None
        self.epoch_start = time.perf_counter()

    def _eta(self, done_steps: int) -> float | None:
        total = (self.epochs - self.first_epoch) * self.steps_per_epoch - self.resume_step
        if done_steps <= 0:
            return None
        elapsed = time.perf_counter() - self.run_start
        return elapsed / done_steps * (total - done_steps)

    def _done_steps(self) -> int:
        return (
            (self.epoch - 1 - self.first_epoch) * self.steps_per_epoch
            + self.step
            - (self.resume_step)
        )

    def _gflops(self, images_per_sec: float) -> float:
        return images_per_sec * self.flops_per_image / 1e9

    def _call_hook(self, progress: Progress) -> None:
        if self.hook is not None and self.hook(progress) is False:
            raise Cancelled

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step = self.offset + batch + 1
        if self.pending_metrics is not None:  # the epoch's metrics carry on from the stop
            add_metric_values(self.model, self.pending_metrics)
            self.pending_metrics = None
            logs = self.model.get_metrics_result()
        if self.hook is not None and self.step % self.progress_every == 0:
            self._report_step(logs)
        if (
            self.stop_requested is not None
            and self.step < self.steps_per_epoch
            and self.stop_requested()
        ):
            self._stop_mid_epoch()

    def _stop_mid_epoch(self) -> None:
        """Checkpoint where the run is (after `self.step` batches of this epoch) and stop."""
        if self.checkpoint_dir is None:
            raise RuntimeError("a stop request needs a checkpoint folder")
        global_step = (self.epoch - 1) * self.steps_per_epoch + self.step
        path = write_step_checkpoint(
            self.checkpoint_dir,
            epoch=self.epoch - 1,
            step_in_epoch=self.step,
            global_step=global_step,
            model=self.model,
            state={**self.state(self.history), "metric_values": metric_values(self.model)},
        )
        self.stopped_at = StopCheckpoint(path, self.epoch - 1, self.step, global_step)
        raise Preempted

    def _report_step(self, logs: dict | None) -> None:
        elapsed = time.perf_counter() - self.epoch_start
        images = min((self.step - self.offset) * self.batch_size, self.num_examples)
        speed = images / elapsed if elapsed > 0 else 0.0
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        self._call_hook(
            Progress(
                kind="step",
                epoch=self.epoch,
                epochs=self.epochs,
                step=self.step,
                steps_per_epoch=self.steps_per_epoch,
                global_step=(self.epoch - 1) * self.steps_per_epoch + self.step,
                metrics=metrics,
                images_per_sec=speed,
                gflops_per_sec=self._gflops(speed),
                eta_seconds=self._eta(self._done_steps()),
            )
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        seconds = time.perf_counter() - self.epoch_start
        row: dict[str, Any] = {"epoch": self.epoch}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = float(logs[key]) if key in logs else None
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["epoch_seconds"] = seconds
        images = min((self.steps_per_epoch - self.offset) * self.batch_size, self.num_examples)
        row["images_per_sec"] = images / seconds if seconds > 0 else 0.0
        self.history.append(row)
        self.step = self.steps_per_epoch
        checkpoint = None
        if self.checkpoint_dir is not None:
            checkpoint = write_checkpoint(
                self.checkpoint_dir, self.epoch, self.model, self.state(self.history)
            )
        eta = self._eta(self._done_steps())
        if self.log is not None:
            self.log(format_epoch(row, self.epochs, eta))
        self._call_hook(
            Progress(
                kind="epoch",
                epoch=self.epoch,
                epochs=self.epochs,
                step=self.steps_per_epoch,
                steps_per_epoch=self.steps_per_epoch,
                global_step=self.epoch * self.steps_per_epoch,
                metrics={k: v for k, v in row.items() if isinstance(v, float)},
                images_per_sec=row["images_per_sec"],
                gflops_per_sec=self._gflops(row["images_per_sec"]),
                eta_seconds=eta,
                checkpoint_path=str(checkpoint) if checkpoint is not None else None,
            )
        )
        if (
            checkpoint is not None
            and self.stop_requested is not None
            and self.epoch < self.epochs
            and self.stop_requested()
        ):
            global_step = self.epoch * self.steps_per_epoch
            self.stopped_at = StopCheckpoint(checkpoint, self.epoch, 0, global_step)
            raise Preempted
