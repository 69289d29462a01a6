"""Device set-up for one run: GPU memory growth, mixed precision, XLA, multi-GPU strategy."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

# The public API can only switch op determinism on; a worker runs many jobs in one process, so
# each run sets it both ways through the function `enable_op_determinism` itself wraps.
from tensorflow.python.framework import config as tf_config

from tass.contract.spec import TrainSpec

# `jit_compile="auto"` on CPUs, per (model, CPU vendor), as measured on 2-core machines
# (docs/benchmarks.md, "XLA and threads on CPU"): XLA made alexnet-cifar 1.6x faster on an AMD
# Zen 3 but 0.66x as fast on an Intel Xeon with AVX-512, where oneDNN's own kernels win;
# alexnet-seed (its cost is in the 4096-wide dense layers) was slower with XLA on both.
# Anything unmeasured runs without XLA. GPUs always use XLA under `auto`.
CPU_AUTO_JIT = {("alexnet-cifar", "AuthenticAMD"): True}


@dataclass
class HardwareInfo:
    """What `configure` chose for this run."""

    device: str  # "cpu" or "gpu"
    num_gpus: int
    gpu_names: list[str] = field(default_factory=list)
    compute_capability: tuple[int, int] | None = None
    precision_policy: str = "float32"
    jit_compile: bool = False
    deterministic: bool = False
    strategy: tf.distribute.Strategy | None = None

    def scope(self) -> contextlib.AbstractContextManager:
        """The distribution scope models and optimizers must be created in."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> str:
        where = f"{self.num_gpus} GPU(s) {', '.join(self.gpu_names)}" if self.num_gpus else "CPU"
        return (
            f"{where}; precision {self.precision_policy}; XLA {'on' if self.jit_compile else 'off'}"
            + ("; deterministic kernels" if self.deterministic else "")
        )


_STRATEGY: tf.distribute.Strategy | None = None


def _gpus() -> list[tf.config.PhysicalDevice]:
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Only possible before the GPU is initialised; later calls keep the earlier setting.
        with contextlib.suppress(RuntimeError, ValueError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return gpus


def _capability(gpu: tf.config.PhysicalDevice) -> tuple[tuple[int, int] | None, str]:
    details = tf.config.experimental.get_device_details(gpu)
    return details.get("compute_capability"), details.get("device_name", gpu.name)


def _policy(setting: str, capability: tuple[int, int] | None, on_gpu: bool) -> str:
    if setting == "off" or (setting == "auto" and (not on_gpu or capability is None)):
        return "float32"
    if on_gpu and capability is not None and capability < (7, 0):
        return "float32" if setting == "auto" else "mixed_float16"
    if on_gpu and capability is not None and capability < (8, 0):
        return "mixed_float16"
    return "mixed_bfloat16"  # Ampere and newer, and CPUs when forced on


def configure(spec: TrainSpec) -> HardwareInfo:
    """Apply the spec's hardware settings to this process; safe to call before every run."""
    global _STRATEGY
    gpus = _gpus()
    capabilities = [_capability(g) for g in gpus]
    capability = min((c for c, _ in capabilities if c), default=None)
    policy = _policy(spec.mixed_precision, capability, bool(gpus))
    keras.mixed_precision.set_dtype_policy(policy)
    auto_jit = bool(gpus) or CPU_AUTO_JIT.get((spec.model, cpu_vendor()), False)
    jit = spec.jit_compile == "on" or (spec.jit_compile == "auto" and auto_jit)
    # Keras runs without XLA whenever op determinism is on (not every XLA op has a
    # deterministic kernel); say so rather than report XLA that is not used.
    jit = jit and not spec.deterministic
    if spec.deterministic:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    strategy = None
    if len(gpus) > 1:
        if _STRATEGY is None:
            _STRATEGY = tf.distribute.MirroredStrategy()
        strategy = _STRATEGY
    return HardwareInfo(
        device="gpu" if gpus else "cpu",
        num_gpus=len(gpus),
        gpu_names=[name for _, name in capabilities],
        compute_capability=capability,
        precision_policy=policy,
        jit_compile=jit,
        deterministic=spec.deterministic,
        strategy=strategy,
    )


CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "fma")


def _cpuinfo(key: str) -> str | None:
    """The first `key: value` of /proc/cpuinfo, or None where there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return None


def cpu_vendor() -> str:
    """`GenuineIntel`, `AuthenticAMD`, ... or `unknown`."""
    return _cpuinfo("vendor_id") or "unknown"


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model = _cpuinfo("model name") or platform.processor() or platform.machine()
    flags = (_cpuinfo("flags") or "").split()
    return model, [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]


def environment(hardware: HardwareInfo | None = None) -> dict[str, object]:
    """What a run's numbers depend on beyond its spec: versions, CPU/GPU model and flags."""
    cpu_model, cpu_flags = _cpu_model_and_flags()
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "cpu": cpu_model,
        "cpu_vendor": cpu_vendor(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_flags,
        "gpus": hardware.gpu_names if hardware else [],
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "hardware": hardware.describe() if hardware else None,
    }
