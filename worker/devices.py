"""What this worker computes on, found without importing TensorFlow (the parent process must
never initialise CUDA before it forks job processes)."""

from __future__ import annotations

import os
import shutil
import subprocess


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
