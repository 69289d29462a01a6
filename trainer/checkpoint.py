"""Checkpoints: `epoch-NNNN/` after each epoch, and `step-NNNNNNNN/` mid-epoch when a worker is
told to stop; each holds model.keras (incl. optimizer state) and state.json. A mid-epoch
state also records `step_in_epoch` (batches of epoch `epoch + 1` already trained) and the
running values of the epoch's metrics, so a resume repeats the uninterrupted run exactly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras

from tass.contract.artifacts import (
    EPOCH_DIR,
    MODEL_FILE,
    STATE_FILE,
    epoch_dir_name,
    step_dir_name,
)
from tass.trainer.errors import CheckpointError


def epoch_dir(checkpoint_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(checkpoint_dir) / epoch_dir_name(epoch)


def write_checkpoint(
    checkpoint_dir: str | os.PathLike, epoch: int, model: keras.Model, state: dict[str, Any]
) -> Path:
    """Write epoch `epoch` (1-based) atomically: a crash never leaves a half-written checkpoint."""
    return _write(epoch_dir(checkpoint_dir, epoch), model, {**state, "epoch": epoch})


def write_step_checkpoint(
    checkpoint_dir: str | os.PathLike,
    *,
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    model: keras.Model,
    state: dict[str, Any],
) -> Path:
    """Write a mid-epoch checkpoint: `epoch` epochs done, then `step_in_epoch` batches."""
    return _write(
        Path(checkpoint_dir) / step_dir_name(global_step),
        model,
        {**state, "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step},
    )


def _write(final: Path, model: keras.Model, state: dict[str, Any]) -> Path:
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / MODEL_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """The state.json of checkpoint directory `path`."""
    path = Path(path)
    if not (path / MODEL_FILE).is_file() or not (path / STATE_FILE).is_file():
        raise CheckpointError(f"{path}: not a checkpoint (needs {MODEL_FILE} and {STATE_FILE})")
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path / STATE_FILE}: unreadable checkpoint state ({exc})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise CheckpointError(f"{path / STATE_FILE}: checkpoint state has no epoch number")
    return state


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The complete epoch-NNNN directory with the highest epoch, or None."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        match = EPOCH_DIR.match(child.name)
        if match and (child / MODEL_FILE).is_file() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """`path` itself if it is a checkpoint, else the latest checkpoint inside it."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise CheckpointError(f"{path}: no checkpoint found (expected epoch-NNNN/ folders)")
    return latest
