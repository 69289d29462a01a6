"""What this worker computes on, found without importing TensorFlow (the parent process must
never initialise CUDA before it forks job processes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from tass.core.scheduler_store import allocations


def visible_gpus() -> list[str]:
    """GPU names from `nvidia-smi -L`, limited to CUDA_VISIBLE_DEVICES when it is set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = [line.strip() for line in out.stdout.splitlines() if line.startswith("GPU ")]
    if visible:
        wanted = {index.strip() for index in visible.split(",")}
        gpus = [g for g in gpus if g.split(":")[0].removeprefix("GPU ").strip() in wanted]
    return gpus


def pin_devices(placement: dict[str, Any] | None, gpus_asked: int) -> str | None:
    """Point this job process at the GPUs the scheduler reserved for it (CUDA_VISIBLE_DEVICES,
    set before TensorFlow first touches a GPU: the trainer initialises devices only when the
    job starts). Device numbers index the worker's own visible GPUs (`tass worker --gpus 2,3`
    makes device 0 GPU 2). Returns the value set; None for a CPU job."""
    if placement is None or gpus_asked <= 0:
        return None
    node = placement.get("worker")
    devices = [d for worker, held in allocations(placement) if worker == node for d in held]
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = [i.strip() for i in inherited.split(",")] if inherited else []
    value = ",".join(ids[d] if d < len(ids) else str(d) for d in devices)
    os.environ["CUDA_VISIBLE_DEVICES"] = value
    return value
