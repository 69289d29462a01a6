"""Learning-rate schedules, registered so that saved models and checkpoints load in safe mode."""

from __future__ import annotations

import math

import keras
from keras import ops

from tass.contract.spec import TrainSpec

PACKAGE = "tass"


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then constant or cosine decay to zero."""

    def __init__(
        self, peak: float, total_steps: int, warmup_steps: int = 0, decay: str = "constant"
    ) -> None:
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = max(self.warmup_steps, 1)
        warmup = self.peak * ops.minimum(1.0, (step + 1.0) / warm)
        if self.decay == "constant":
            return warmup if self.warmup_steps else ops.full_like(step, self.peak)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle: linear rise from peak*start_fraction to peak, then cosine down to ~0."""

    def __init__(
        self,
        peak: float,
        total_steps: int,
        rise_fraction: float = 0.25,
        start_fraction: float = 0.1,
        end_fraction: float = 1e-3,
    ) -> None:
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.rise_fraction = float(rise_fraction)
        self.start_fraction = float(start_fraction)
        self.end_fraction = float(end_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rise = max(round(self.total_steps * self.rise_fraction), 1)
        fall = max(self.total_steps - rise, 1)
        start, end = self.peak * self.start_fraction, self.peak * self.end_fraction
        up = start + (self.peak - start) * ops.minimum(step / rise, 1.0)
        progress = ops.clip((step - rise) / fall, 0.0, 1.0)
        down = end + 0.5 * (self.peak - end) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < rise, up, down)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "rise_fraction": self.rise_fraction,
            "start_fraction": self.start_fraction,
            "end_fraction": self.end_fraction,
        }


def make_schedule(
    spec: TrainSpec, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The schedule that `spec.schedule` names, over spec.epochs * steps_per_epoch steps."""
    total = spec.epochs * steps_per_epoch
    if spec.schedule == "one-cycle":
        return OneCycle(spec.learning_rate, total)
    warmup = round(spec.warmup_epochs * steps_per_epoch)
    decay = "cosine" if spec.schedule == "cosine" else "constant"
    return WarmupSchedule(spec.learning_rate, total, warmup, decay)


def make_optimizer(spec: TrainSpec, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer `spec` names; weight decay skips biases and BatchNorm parameters."""
    lr = make_schedule(spec, steps_per_epoch)
    wd = spec.weight_decay or None
    if spec.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            lr, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=wd
        )
    elif spec.optimizer == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=spec.weight_decay)
    else:
        opt = keras.optimizers.Adam(lr, weight_decay=wd)
    if spec.weight_decay:
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt
