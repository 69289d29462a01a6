"""The Keras callback that reports progress, writes checkpoints and honours cancellation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from tass.trainer.checkpoint import write_checkpoint
from tass.trainer.progress import Progress, format_duration

Hook = Callable[[Progress], "bool | None"]


class Cancelled(Exception):
    """Raised inside fit() when the hook returns False; train() catches it."""


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
        self.run_start = 0.0
        self.epoch_start = 0.0
        self.epoch = 0  # 1-based, current
        self.step = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.run_start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        self.step = 0
        self.epoch_start = time.perf_counter()

    def _eta(self, done_steps: int) -> float | None:
        total = (self.epochs - self.first_epoch) * self.steps_per_epoch
        if done_steps <= 0:
            return None
        elapsed = time.perf_counter() - self.run_start
        return elapsed / done_steps * (total - done_steps)

    def _done_steps(self) -> int:
        return (self.epoch - 1 - self.first_epoch) * self.steps_per_epoch + self.step

    def _gflops(self, images_per_sec: float) -> float:
        return images_per_sec * self.flops_per_image / 1e9

    def _call_hook(self, progress: Progress) -> None:
        if self.hook is not None and self.hook(progress) is False:
            raise Cancelled

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step = batch + 1
        if self.hook is None or self.step % self.progress_every:
            return
        elapsed = time.perf_counter() - self.epoch_start
        images = min(self.step * self.batch_size, self.num_examples)
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
        row["images_per_sec"] = self.num_examples / seconds if seconds > 0 else 0.0
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
