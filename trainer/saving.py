"""Saving and loading trained models: the .keras format, and SavedModel export for TF Serving."""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

import keras

from tass.trainer import losses, schedules
from tass.trainer.errors import ModelFileError

# Compiled models reference these; importing them registers them for deserialisation.
REGISTERED = (losses.SmoothedSparseCrossentropy, schedules.OneCycle)
# Keras' own metadata member of a .keras zip; exported models add their class names to it
KERAS_METADATA_MEMBER = "metadata.json"
CLASS_NAMES_KEY = "class_names"
# where models exported before the uint8 contract kept their class names (still read)
CLASS_NAMES_MEMBER = "tass_class_names.json"
# what an exported model takes: uint8 pixels 0-255; training models (and older exports) take
# float32 in [0, 1]
PIXEL_DTYPE = "uint8"


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save architecture, weights and (if compiled) optimizer state to a .keras file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def takes_pixels(model: keras.Model) -> bool:
    """True when `model` takes uint8 pixels 0-255 and scales them itself (every model exported
    with the uint8 contract); False for float32 [0, 1] input (training models, older exports)."""
    return keras.backend.standardize_dtype(model.inputs[0].dtype) == PIXEL_DTYPE


def pixel_model(model: keras.Model) -> keras.Model:
    """`model` behind a uint8 input and its preprocessing (a Rescaling layer: the cast and the
    scaling to [0, 1] that training applies), sharing its weights; unchanged if it already
    takes pixels."""
    if takes_pixels(model):
        return model
    # the layers alone: a compiled training model would carry its optimizer and loss along
    layers_only = keras.Model(model.inputs, model.outputs, name=model.name)
    pixels = keras.Input(model.input_shape[1:], dtype=PIXEL_DTYPE, name="pixels")
    scaled = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="scale_to_unit")(pixels)
    return keras.Model(pixels, layers_only(scaled), name=model.name)


def _compiled_for_users(model: keras.Model) -> keras.Model:
    """`model` behind its uint8 input, compiled with stock Keras parts only: the loss and
    accuracy that `model.evaluate` reports, and plain SGD (no slot variables, so the file stays
    the size of the weights). Built in the strategy scope that holds the weights."""
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        exported = pixel_model(model)
        exported.compile(
            optimizer=keras.optimizers.SGD(),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    return exported


def _add_metadata(path: Path, extra: dict[str, object]) -> None:
    """Merge `extra` into the metadata.json of the .keras zip at `path` (rewritten in place)."""
    rewritten = path.with_name(path.name + ".part")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == KERAS_METADATA_MEMBER:
                data = json.dumps({**json.loads(data), **extra}).encode()
            target.writestr(info, data)
    os.replace(rewritten, path)


def export_model(model: keras.Model, path: str | os.PathLike, class_names: list[str]) -> Path:
    """Save the model that users download, with an explicit contract: it takes uint8 images
    0-255 (the scaling is its first layer), it is compiled (loss and accuracy; plain
    `model.evaluate(x_uint8, y)` works), and its class names, in output order, are in the
    file's metadata.json (`class_names`). Stock Keras layers only, so
    `keras.models.load_model(path)` works in any Python with Keras, without this package."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    if int(model.output_shape[-1]) != len(class_names):
        raise ValueError(
            f"the model predicts {model.output_shape[-1]} classes, "
            f"but {len(class_names)} class names were given"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _compiled_for_users(model).save(path)
    _add_metadata(path, {CLASS_NAMES_KEY: list(class_names), "input": "uint8 pixels 0-255"})
    return path


def read_class_names(path: str | os.PathLike) -> list[str] | None:
    """The class names stored in an exported model file (None when it has none): its
    metadata.json's `class_names`, or the member that older exports kept them in."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            names = None
            if KERAS_METADATA_MEMBER in members:
                names = json.loads(archive.read(KERAS_METADATA_MEMBER)).get(CLASS_NAMES_KEY)
            if names is None and CLASS_NAMES_MEMBER in members:
                names = json.loads(archive.read(CLASS_NAMES_MEMBER))
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path}: cannot read its class names ({exc})") from exc
    if names is None:
        return None
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
    """Export an inference-only TF SavedModel with the .keras export's contract (signature
    `serve`: uint8 images 0-255 -> class probabilities)."""
    directory = Path(directory)
    pixel_model(model).export(str(directory), format="tf_saved_model", verbose=False)
    return directory
