"""Saving and loading trained models: the .keras format, and SavedModel export for TF Serving."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

from tass.trainer import losses, schedules
from tass.trainer.errors import ModelFileError

# Compiled models reference these; importing them registers them for deserialisation.
REGISTERED = (losses.SmoothedSparseCrossentropy, schedules.OneCycle)
# an extra member of exported .keras files (Keras ignores it): what the outputs mean
CLASS_NAMES_MEMBER = "tass_class_names.json"


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save architecture, weights and (if compiled) optimizer state to a .keras file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def export_model(model: keras.Model, path: str | os.PathLike, class_names: list[str]) -> Path:
    """Save the inference model that users download: architecture and weights only, built
    from stock Keras layers, so `keras.models.load_model(path)` works in any Python with
    Keras, without this package (no optimizer, loss or learning-rate schedule of ours is in
    the file). The class names, in output order, travel inside the file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    if int(model.output_shape[-1]) != len(class_names):
        raise ValueError(
            f"the model predicts {model.output_shape[-1]} classes, "
            f"but {len(class_names)} class names were given"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    inference = keras.Model(model.inputs, model.outputs, name=model.name)  # shares the weights
    inference.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CLASS_NAMES_MEMBER, json.dumps(list(class_names)))
    return path


def read_class_names(path: str | os.PathLike) -> list[str] | None:
    """The class names stored in an exported model file (None when it has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if CLASS_NAMES_MEMBER not in archive.namelist():
                return None
            names = json.loads(archive.read(CLASS_NAMES_MEMBER))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot read its class names ({exc})") from exc
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{path}: its class names are not a list of strings")
    return names


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
