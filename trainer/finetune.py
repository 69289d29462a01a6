"""Fine-tuning: start a network from a trained model's weights, with a new head when the
classes differ, and keep chosen layers frozen.

The network is the one the spec builds; the parent model (an exported .keras file, loaded in
safe mode) gives its weights layer by layer, matched in order among the layers that have
weights (so weightless layers an export adds, such as an input Rescaling, do not matter).
Every layer but the head must match in shape; the head is reused only when the parent was
trained on the same classes in the same order, and is trained afresh otherwise.
"""

from __future__ import annotations

import os

import keras

from tass.contract.spec import FREEZE_ALL_BUT_HEAD, TrainSpec
from tass.trainer.errors import ModelSpecError
from tass.trainer.saving import load_model, read_class_names


def _leaf_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    children = getattr(layer, "layers", None)
    if not children:
        return [layer]
    return [leaf for child in children for leaf in _leaf_layers(child)]


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's (nested models' included) layers that hold weights, in order."""
    return [layer for layer in _leaf_layers(model) if layer.weights]


def head_layer(model: keras.Model) -> keras.layers.Layer:
    """The output layer: the last layer with weights."""
    layers = weighted_layers(model)
    if not layers:
        raise ModelSpecError("the network has no layer with weights")
    return layers[-1]


def _shapes(layer: keras.layers.Layer) -> list[tuple[int, ...]]:
    return [tuple(weight.shape) for weight in layer.weights]


def start_from(
    model: keras.Model, path: str | os.PathLike, class_names: list[str], what: str = "init_from"
) -> bool:
    """Copy the weights of the model file at `path` into `model`; True when the head was
    reused too (same classes), False when it was left freshly initialised."""
    parent = load_model(path, compile=False)
    ours, theirs = weighted_layers(model), weighted_layers(parent)
    if len(ours) != len(theirs):
        raise ModelSpecError(
            f"{what}: the model has {len(theirs)} layers with weights, this spec's network "
            f"{len(ours)}: train the same network (model, width, architecture) as the parent"
        )
    for mine, parents in zip(ours[:-1], theirs[:-1], strict=True):
        if _shapes(mine) != _shapes(parents):
            raise ModelSpecError(
                f"{what}: layer {parents.name!r} has weights {_shapes(parents)}, but this "
                f"spec's layer {mine.name!r} has {_shapes(mine)}: train the same network "
                "(model, width, image channels) as the parent"
            )
        mine.set_weights(parents.get_weights())
    same_classes = read_class_names(path) == list(class_names)
    if same_classes and _shapes(ours[-1]) == _shapes(theirs[-1]):
        ours[-1].set_weights(theirs[-1].get_weights())
        return True
    return False


def freeze(model: keras.Model, spec: TrainSpec) -> list[str]:
    """Mark the layers `spec.freeze` names (or all but the head) not trainable; returns their
    names. ModelSpecError names a layer the network does not have."""
    if spec.freeze is None:
        return []
    leaves = _leaf_layers(model)
    if spec.freeze == FREEZE_ALL_BUT_HEAD:
        head = head_layer(model)
        chosen = [layer for layer in leaves if layer is not head and layer.weights]
    else:
        by_name = {layer.name: layer for layer in leaves}
        unknown = [name for name in spec.freeze if name not in by_name]
        if unknown:
            raise ModelSpecError(
                f"freeze: the network has no layers {unknown}; it has {sorted(by_name)}"
            )
        chosen = [by_name[name] for name in spec.freeze]
    for layer in chosen:
        layer.trainable = False
    return [layer.name for layer in chosen]
