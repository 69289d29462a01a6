"""Saving and loading trained models: the .keras format, and SavedModel export for TF Serving."""

from __future__ import annotations

import os
from pathlib import Path

import keras

import trainer.losses
import trainer.schedules
from trainer.errors import ModelFileError

# Compiled models reference these; importing them registers them for deserialisation.
REGISTERED = (trainer.losses.SmoothedSparseCrossentropy, trainer.schedules.OneCycle)


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save architecture, weights and (if compiled) optimizer state to a .keras file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_model(path: str | os.PathLike, *, compile: bool = True) -> keras.Model:
    """Load a .keras file in safe mode (no arbitrary code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: cannot load model ({exc})") from exc


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Fill `model` (and its built optimizer) with the variables saved in .keras file `path`.

    The architecture must match: a checkpoint of another model is refused, not half-loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: cannot load weights ({exc})") from exc


def export_savedmodel(model: keras.Model, directory: str | os.PathLike) -> Path:
    """Export an inference-only TF SavedModel (signature `serve`: float32 [0,1] images -> probs)."""
    directory = Path(directory)
    model.export(str(directory), format="tf_saved_model", verbose=False)
    return directory
