"""The model zoo, looked up by name: AlexNet variants (sized for 32x32 images, built at any
size), three Keras Applications trained from scratch, and the user's own architecture
(`keras-json`), loaded as data in Keras safe mode after the checks of
`tass.contract.architecture`."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable

import keras
from keras import layers

from tass.contract.architecture import ArchitectureError, check_architecture
from tass.contract.spec import APPLICATIONS, TrainSpec
from tass.trainer.errors import ModelSpecError

INPUT_SHAPE = (32, 32, 3)

# alexnet-cifar channel widths at width=1.0, sized for the 30-minute 2-core CPU budget; width=4
# gives AlexNet-like widths (96-192-384-384-384, dense 768) for GPUs.
CIFAR_WIDTHS = (24, 48, 96, 96, 96)
CIFAR_HIDDEN = 192
# Faster-moving BatchNorm statistics than Keras' 0.99: short runs evaluate well too.
BN_MOMENTUM = 0.9


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def _conv(
    filters: int,
    kernel: int,
    *,
    strides: int = 1,
    batch_norm: bool,
    reg: keras.regularizers.Regularizer | None,
    name: str,
) -> list[layers.Layer]:
    """Conv2D + ReLU, or Conv2D (no bias) + BatchNorm + ReLU."""
    conv = functools.partial(
        layers.Conv2D,
        filters,
        kernel,
        strides=strides,
        padding="same",
        kernel_regularizer=reg,
        name=name,
    )
    if not batch_norm:
        return [conv(activation="relu")]
    return [
        conv(use_bias=False),
        layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn"),
        layers.ReLU(name=f"{name}_relu"),
    ]


def textbook_alexnet_layers(num_classes: int = 10) -> list[layers.Layer]:
    """The classic Keras AlexNet layer list, unchanged: its last pool cannot build on 32x32."""
    return [
        layers.Conv2D(96, 11, strides=4, padding="same", activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Conv2D(256, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Conv2D(384, 3, padding="same", activation="relu"),
        layers.Conv2D(384, 3, padding="same", activation="relu"),
        layers.Conv2D(256, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Flatten(),
        layers.Dense(4096, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(4096, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]


def alexnet_seed(
    num_classes: int = 10,
    *,
    batch_norm: bool = False,
    dropout: float = 0.5,
    l1: float = 0.0,
    l2: float = 0.0,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
) -> keras.Model:
    """The textbook layer list with one change: the pools use padding='same'.

    On 32x32 input conv1 (stride 4) leaves 8x8; the unpadded 3x3/2 pools shrink that to 3x3 and
    then 1x1, and the last pool has nothing left to pool, so the model cannot be built. Padded
    pools give 8 -> 4 -> 2 -> 1 and the model builds (21.6M parameters at 10 classes).
    `batch_norm` adds BatchNormalization after each convolution; the output layer is float32.
    """
    reg = _regularizer(l1, l2)
    stack: list[layers.Layer] = [keras.Input(input_shape)]
    for i, (filters, kernel, strides, pool) in enumerate(
        [
            (96, 11, 4, True),
            (256, 5, 1, True),
            (384, 3, 1, False),
            (384, 3, 1, False),
            (256, 3, 1, True),
        ]
    ):
        stack += _conv(
            filters, kernel, strides=strides, batch_norm=batch_norm, reg=reg, name=f"conv{i + 1}"
        )
        if pool:
            stack.append(layers.MaxPooling2D(3, strides=2, padding="same"))  # the one change
    stack += [
        layers.Flatten(),
        layers.Dense(4096, activation="relu", kernel_regularizer=reg),
        layers.Dropout(dropout),
        layers.Dense(4096, activation="relu", kernel_regularizer=reg),
        layers.Dropout(dropout),
        layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions"),
    ]
    return keras.Sequential(stack, name="alexnet_seed")


def alexnet_cifar(
    num_classes: int = 10,
    *,
    width: float = 1.0,
    batch_norm: bool = True,
    dropout: float = 0.5,
    l1: float = 0.0,
    l2: float = 0.0,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
) -> keras.Model:
    """AlexNet adapted to 32x32: five 3x3 convs, three 2x2 pools (32 -> 16 -> 8 -> 4), one
    hidden dense layer.

    Small kernels and stride 1 replace the 11x11/4 stem that throws away most of a 32x32
    image; BatchNorm lets it train quickly at high learning rates; global max pooling keeps the
    head small. The output layer computes in float32, so mixed precision is safe.
    """
    reg = _regularizer(l1, l2)
    c1, c2, c3, c4, c5 = (max(8, round(c * width)) for c in CIFAR_WIDTHS)
    hidden = max(16, round(CIFAR_HIDDEN * width))
    stack: list[layers.Layer] = [keras.Input(input_shape)]
    stack += _conv(c1, 3, batch_norm=batch_norm, reg=reg, name="conv1")
    stack.append(layers.MaxPooling2D(2, name="pool1"))
    stack += _conv(c2, 3, batch_norm=batch_norm, reg=reg, name="conv2")
    stack.append(layers.MaxPooling2D(2, name="pool2"))
    stack += _conv(c3, 3, batch_norm=batch_norm, reg=reg, name="conv3")
    stack += _conv(c4, 3, batch_norm=batch_norm, reg=reg, name="conv4")
    stack += _conv(c5, 3, batch_norm=batch_norm, reg=reg, name="conv5")
    stack.append(layers.MaxPooling2D(2, name="pool3"))
    stack.append(layers.GlobalMaxPooling2D(name="global_pool"))
    stack.append(layers.Dropout(dropout, name="dropout1"))
    if batch_norm:
        stack += [
            layers.Dense(hidden, use_bias=False, kernel_regularizer=reg, name="fc1"),
            layers.BatchNormalization(momentum=BN_MOMENTUM, name="fc1_bn"),
            layers.ReLU(name="fc1_relu"),
        ]
    else:
        stack.append(layers.Dense(hidden, activation="relu", kernel_regularizer=reg, name="fc1"))
    stack += [
        layers.Dropout(dropout, name="dropout2"),
        layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions"),
    ]
    return keras.Sequential(stack, name="alexnet_cifar")


def _applications(pretrained: bool = False) -> dict[str, Callable[..., keras.Model]]:
    """The Keras Applications by name. From scratch they take the [0, 1] images every model
    here takes; with ImageNet weights, MobileNetV3 and EfficientNetV2 use their own built-in
    preprocessing (it expects 0-255, so keras_application scales the input back up)."""
    apps = keras.applications
    return {
        "resnet50": apps.ResNet50,
        "mobilenetv3-small": functools.partial(
            apps.MobileNetV3Small, include_preprocessing=pretrained
        ),
        "efficientnetv2-b0": functools.partial(
            apps.EfficientNetV2B0, include_preprocessing=pretrained
        ),
    }


def keras_application(
    name: str,
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    dropout: float,
    weights: str | None = None,
) -> keras.Model:
    """A Keras Applications network (from scratch, or ImageNet weights that Keras downloads)
    with global average pooling and a new softmax head of `num_classes`; takes [0, 1] images
    like every model here. (ResNet50's ImageNet weights expect caffe-style BGR mean-subtracted
    input; they get [0, 255] RGB here, which fine-tuning adapts to.)"""
    pretrained = weights is not None
    base = _applications(pretrained)[name](
        include_top=False, weights=weights, input_shape=input_shape, pooling="avg"
    )
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(255.0, name="to_0_255")(inputs) if pretrained else inputs
    x = layers.Dropout(dropout, name="head_dropout")(base(x) if pretrained else base.output)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(
        x
    )
    return keras.Model(inputs if pretrained else base.input, outputs, name=name.replace("-", "_"))


def _is_softmax(layer: layers.Layer) -> bool:
    return isinstance(layer, layers.Softmax) or (
        getattr(layer, "activation", None) is keras.activations.softmax
    )


def with_new_head(model: keras.Model, num_classes: int) -> keras.Model:
    """`model` with its last Dense layer replaced by a fresh one of `num_classes` units (same
    activation), the layers after it (a softmax) kept."""
    position = max(i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Dense))
    old = model.layers[position]
    x = layers.Dense(num_classes, activation=old.activation, dtype="float32", name="new_head")(
        old.input
    )
    for layer in model.layers[position + 1 :]:
        x = layer(x)
    return keras.Model(model.inputs, x, name=model.name)


def _with_input_shape(architecture: dict, input_shape: tuple[int, int, int]) -> dict:
    """A copy of the config whose input layer takes `input_shape` (the dimensions the config
    left open are filled in; check_architecture has checked the ones it fixes)."""
    config = copy.deepcopy(architecture)
    for layer in config["config"]["layers"]:
        if layer.get("class_name") == "InputLayer":
            layer["config"]["batch_shape"] = [None, *input_shape]
    return config


def from_architecture(
    architecture: dict,
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    new_head: bool = False,
) -> keras.Model:
    """The user's Keras model config, checked (allow-listed layers, bounded size) and then
    deserialised in Keras safe mode with no custom objects: no code from the config runs.
    Outputs that are not a softmax are taken as logits and get one. ModelSpecError names
    what is wrong (a refused layer, a limit, a head that does not match the classes). With
    `new_head` (fine-tuning), a head of another class count is replaced by a fresh one."""
    height, _, channels = input_shape
    try:
        summary = check_architecture(architecture, height, channels)
    except ArchitectureError as exc:
        raise ModelSpecError(f"architecture {exc}") from exc
    if summary.output_shape != (num_classes,) and not new_head:
        raise ModelSpecError(
            f"architecture: its output has {summary.output_shape[0]} classes, but the dataset "
            f"has {num_classes}: make the last layer Dense({num_classes})"
        )
    try:
        with keras.saving.custom_object_scope({}):
            model = keras.models.model_from_json(
                json.dumps(_with_input_shape(architecture, input_shape))
            )
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelSpecError(f"architecture: Keras cannot load it ({exc})") from exc
    if summary.output_shape != (num_classes,):
        model = with_new_head(model, num_classes)
    if not _is_softmax(model.layers[-1]):
        outputs = layers.Softmax(dtype="float32", name="probabilities")(model.outputs[0])
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model


ModelBuilder = Callable[..., keras.Model]
MODELS: dict[str, ModelBuilder] = {"alexnet-seed": alexnet_seed, "alexnet-cifar": alexnet_cifar}


def spec_input_shape(spec: TrainSpec) -> tuple[int, int, int]:
    """(height, width, channels) of the images the spec trains on."""
    return (spec.image_size, spec.image_size, spec.channels)


def build_model(
    spec: TrainSpec, num_classes: int = 10, input_shape: tuple[int, int, int] | None = None
) -> keras.Model:
    """Build (uncompiled) the model that `spec.model` names, with the spec's options, for
    images of `input_shape` (default: the spec's image_size and channels)."""
    input_shape = input_shape or spec_input_shape(spec)
    if spec.model == "keras-json":
        return from_architecture(
            spec.architecture or {},
            num_classes,
            input_shape,
            new_head=spec.init_from is not None,
        )
    if spec.model in APPLICATIONS:
        return keras_application(
            spec.model,
            num_classes,
            input_shape=input_shape,
            dropout=spec.dropout,
            weights=spec.weights,
        )
    try:
        builder = MODELS[spec.model]
    except KeyError:
        raise ValueError(
            f"model: unknown model {spec.model!r}; choose from {sorted(MODELS)}"
        ) from None
    options = {
        "batch_norm": spec.batch_norm,
        "dropout": spec.dropout,
        "l1": spec.l1,
        "l2": spec.l2,
        "input_shape": input_shape,
    }
    if spec.model == "alexnet-cifar":
        options["width"] = spec.width
    return builder(num_classes, **options)
