"""configure(): precision and XLA follow the spec's toggles and reset between runs."""

from __future__ import annotations

import keras
import pytest
from tensorflow.python.framework import config as tf_config

from tass.contract.spec import TrainSpec
from tass.trainer import hardware
from tass.trainer.hardware import configure


def test_cpu_auto_is_float32_and_toggles_are_forced_then_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        monkeypatch.setattr(hardware, "cpu_vendor", lambda: "AuthenticAMD")
        auto = configure(TrainSpec())
        assert auto.device == "cpu" and auto.num_gpus == 0 and auto.strategy is None
        assert auto.precision_policy == "float32"
        # XLA where it measured faster: alexnet-cifar on AMD, never alexnet-seed, not on Intel.
        assert auto.jit_compile
        assert not configure(TrainSpec(model="alexnet-seed")).jit_compile
        monkeypatch.setattr(hardware, "cpu_vendor", lambda: "GenuineIntel")
        assert not configure(TrainSpec()).jit_compile
        forced = configure(TrainSpec(mixed_precision="on", jit_compile="on"))
        assert forced.precision_policy == "mixed_bfloat16" and forced.jit_compile
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
        again = configure(TrainSpec(mixed_precision="off", jit_compile="off"))
        assert keras.mixed_precision.dtype_policy().name == "float32"
        assert again.precision_policy == "float32" and not again.jit_compile
        assert "CPU" in again.describe()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_deterministic_kernels_follow_each_runs_spec() -> None:
    """A worker runs many jobs in one process: one job's choice must not stick to the next."""
    try:
        on = configure(TrainSpec(deterministic=True))
        assert on.deterministic and tf_config.is_op_determinism_enabled()
        assert not on.jit_compile  # Keras does not combine XLA with op determinism
        assert "deterministic" in on.describe()
        off = configure(TrainSpec())
        assert not off.deterministic and not tf_config.is_op_determinism_enabled()
    finally:
        tf_config.disable_op_determinism()
