"""Keras architectures as data: the checks a `keras-json` config passes before any of it runs.

A user's architecture arrives as the JSON that `model.to_json()` writes. This module reads it
as plain data (standard library only: the API validates submits with it and never imports
TensorFlow) and refuses, naming the layer or the limit:
- anything that is not a built-in Keras layer on the allow-list (no Lambda, no custom or
  registered objects, no nested models, no code of any kind), and any helper object
  (initializer, regularizer, constraint, dtype policy, activation) that is not a built-in one;
- a config over MAX_ARCHITECTURE_BYTES, nested deeper than MAX_NESTING, or with more than
  MAX_LAYERS layers;
- a network over MAX_PARAMETERS parameters or MAX_FORWARD_FLOPS forward FLOPs per image,
  both estimated here by propagating the input shape through the layers (never trusting the
  shapes the file claims), so a 10^10-parameter config is refused before anything allocates.
The worker then loads the config with Keras in safe mode, which refuses code a second time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_ARCHITECTURE_BYTES = 2 * 1024**2  # ResNet50's config is about 0.2 MB
MAX_NESTING = 40
MAX_LAYERS = 2000
MAX_PARAMETERS = 200_000_000
MAX_FORWARD_FLOPS = 200 * 10**9  # per image; ResNet50 at 224x224 is about 8 GFLOPs

Shape = tuple[int, ...]  # without the batch dimension


class ArchitectureError(ValueError):
    """An architecture config that is refused; the message names the layer or the limit."""


@dataclass(frozen=True)
class ArchitectureSummary:
    layers: int
    parameters: int
    forward_flops: int
    input_shape: Shape
    output_shape: Shape


_MODELS = {("keras", "Sequential"), ("keras.src.models.functional", "Functional")}
_HELPERS = {
    "keras": {"DTypePolicy", "FloatDTypePolicy"},
    "keras.initializers": {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
        "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
        "TruncatedNormal", "VarianceScaling", "Zeros",
    },
    "keras.regularizers": {"L1", "L2", "L1L2", "OrthogonalRegularizer"},
    "keras.constraints": {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"},
}  # fmt: skip
ACTIVATIONS = frozenset(
    [
        "linear",
        "relu",
        "relu6",
        "sigmoid",
        "softmax",
        "tanh",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "swish",
        "silu",
        "gelu",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "leaky_relu",
        "log_softmax",
        "exponential",
        "mish",
    ]
)
_TENSOR = "__keras_tensor__"


def parse_architecture(value: object) -> dict[str, Any]:
    """The config as a dict, from a dict or a JSON string, refused past the size limit."""
    text = value if isinstance(value, str) else None
    if text is None:
        if not isinstance(value, dict):
            raise ArchitectureError("must be a Keras model config: a JSON object or string")
        try:
            text = json.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ArchitectureError(f"is not JSON data ({exc})") from exc
    if len(text.encode()) > MAX_ARCHITECTURE_BYTES:
        raise ArchitectureError(
            f"is {len(text.encode())} bytes of JSON, over the limit of {MAX_ARCHITECTURE_BYTES}"
        )
    if isinstance(value, dict):
        return value
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ArchitectureError(f"is not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(config, dict):
        raise ArchitectureError("must be a JSON object (what keras.Model.to_json() writes)")
    return config


def _walk(value: object, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every JSON object in `value` (refusing nesting past MAX_NESTING)."""
    if depth > MAX_NESTING:
        raise ArchitectureError(f"is nested more than {MAX_NESTING} levels deep")
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, depth + 1)


def _check_objects(config: dict[str, Any]) -> None:
    """Every serialised object is a built-in model, layer or helper; activations by name."""
    for obj in _walk(config):
        for key in ("activation", "recurrent_activation"):
            name = obj.get(key)
            if key in obj and not (isinstance(name, str) and name in ACTIVATIONS):
                raise ArchitectureError(
                    f"activation {name!r} is not a built-in activation; allowed: "
                    f"{', '.join(sorted(ACTIVATIONS))}"
                )
        if "class_name" not in obj:
            continue
        cls, module = obj["class_name"], obj.get("module")
        if cls == _TENSOR and set(obj) <= {"class_name", "config"}:
            continue
        registered = obj.get("registered_name")
        if registered not in (None, cls):
            raise ArchitectureError(
                f"{cls!r} is a custom object ({registered!r}); only built-in Keras objects "
                "are allowed"
            )
        allowed = (
            (module, cls) in _MODELS
            or (module == "keras.layers" and cls in LAYERS)
            or cls in _HELPERS.get(str(module), ())
        )
        if not allowed:
            is_layer = module == "keras.layers" or "inbound_nodes" in obj
            named = f" {_name(obj)!r}" if is_layer else ""
            raise ArchitectureError(
                f"{'layer' if is_layer else 'object'}{named} of class {cls!r} (module "
                f"{module!r}) is not allowed: only built-in Keras "
                f"layers are (no Lambda, no custom objects); allowed layers: "
                f"{', '.join(sorted(LAYERS))}"
            )


def check_architecture(
    value: object, image_size: int | None = None, channels: int | None = None
) -> ArchitectureSummary:
    """Refuse (ArchitectureError) a config that is not plain built-in Keras, or over a limit.
    `image_size`/`channels` fill the input dimensions the config leaves open (None) and must
    equal those it fixes. Any malformed JSON shape is an ArchitectureError too, never another
    exception."""
    try:
        return _check(parse_architecture(value), image_size, channels)
    except ArchitectureError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, ValueError, RecursionError) as exc:
        raise ArchitectureError(
            f"is not a Keras model config ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def _check(
    config: dict[str, Any], image_size: int | None, channels: int | None
) -> ArchitectureSummary:
    key = (config.get("module"), config.get("class_name"))
    if key not in _MODELS:
        raise ArchitectureError(
            f"the top level must be a Sequential or functional Model config, not "
            f"{config.get('class_name')!r}"
        )
    _check_objects(config)
    layers = (config.get("config") or {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise ArchitectureError("has no layers")
    if len(layers) > MAX_LAYERS:
        raise ArchitectureError(f"has {len(layers)} layers, over the limit of {MAX_LAYERS}")
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            raise ArchitectureError("every layer must be a Keras layer config object")
        if layer.get("module") != "keras.layers":
            raise ArchitectureError(
                f"layer {_name(layer)!r} is a {layer.get('class_name')!r}: nested models are "
                "not supported (flatten it into one Sequential or functional model)"
            )
    estimate = _sequential if key[1] == "Sequential" else _functional
    return estimate(layers, config["config"], image_size, channels)


def architecture_input_shape(value: object) -> tuple[int | None, ...] | None:
    """The (height, width, channels) the config's input layer declares (None: unknown)."""
    try:
        config = parse_architecture(value)
    except ArchitectureError:
        return None
    body = config.get("config")
    layers = body.get("layers") if isinstance(body, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("class_name") != "InputLayer":
            continue
        layer_config = layer.get("config")
        shape = layer_config.get("batch_shape") if isinstance(layer_config, dict) else None
        if isinstance(shape, list) and len(shape) == 4:
            return tuple(
                d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape[1:]
            )
    return None


def _name(layer: dict[str, Any]) -> str:
    config = layer.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name or layer.get("name") or "?")


def _input_shape(layer: dict[str, Any], image_size: int | None, channels: int | None) -> Shape:
    """The image shape of an InputLayer, its open dimensions filled from the spec."""
    shape = layer["config"].get("batch_shape")
    if not isinstance(shape, list) or len(shape) != 4:
        raise ArchitectureError(
            f"input {_name(layer)!r} must take images: batch_shape [null, height, width, "
            f"channels], got {shape!r}"
        )
    wanted = (image_size, image_size, channels)
    dims = []
    for got, want, what in zip(shape[1:], wanted, ("height", "width", "channels"), strict=True):
        if got is not None and (not isinstance(got, int) or isinstance(got, bool) or got < 1):
            raise ArchitectureError(f"input {_name(layer)!r}: bad {what} {got!r}")
        if got is not None and want is not None and got != want:
            spec_field = "channels" if what == "channels" else "image_size"
            raise ArchitectureError(
                f"input {_name(layer)!r} takes {what} {got}, but spec.{spec_field} is {want}"
            )
        value = got if got is not None else want
        if value is None:
            raise ArchitectureError(f"input {_name(layer)!r} leaves its {what} open")
        dims.append(value)
    return tuple(dims)


class _Totals:
    def __init__(self) -> None:
        self.parameters = 0
        self.flops = 0

    def add(self, layer: dict[str, Any], inputs: list[Shape]) -> Shape:
        try:
            shape, params, flops = LAYERS[layer["class_name"]](layer["config"], inputs)
        except ArchitectureError as exc:
            raise ArchitectureError(f"layer {_name(layer)!r}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            raise ArchitectureError(
                f"layer {_name(layer)!r} ({layer['class_name']}): its config does not fit its "
                f"input shapes {inputs} ({type(exc).__name__}: {exc})"
            ) from None
        if any(d < 1 for d in shape):
            raise ArchitectureError(
                f"layer {_name(layer)!r} ({layer['class_name']}) leaves nothing: output "
                f"shape {shape} from {inputs}"
            )
        self.parameters += params
        self.flops += flops
        if self.parameters > MAX_PARAMETERS:
            raise ArchitectureError(
                f"has about {self.parameters:.3g} parameters by layer {_name(layer)!r}, over "
                f"the limit of {MAX_PARAMETERS:.3g}"
            )
        if self.flops > MAX_FORWARD_FLOPS:
            raise ArchitectureError(
                f"costs about {self.flops:.3g} FLOPs per image by layer {_name(layer)!r}, "
                f"over the limit of {MAX_FORWARD_FLOPS:.3g}"
            )
        return shape


def _summary(count: int, totals: _Totals, first: Shape, last: Shape) -> ArchitectureSummary:
    if len(last) != 1:
        raise ArchitectureError(
            f"the output must be one score per class (shape (classes,)), got {last}"
        )
    return ArchitectureSummary(count, totals.parameters, totals.flops, first, last)


def _sequential(
    layers: list[dict[str, Any]], _: dict[str, Any], size: int | None, channels: int | None
) -> ArchitectureSummary:
    if layers[0].get("class_name") != "InputLayer":
        raise ArchitectureError(
            "the Sequential model has no InputLayer: start it with keras.Input((h, w, c))"
        )
    first = shape = _input_shape(layers[0], size, channels)
    totals = _Totals()
    for layer in layers[1:]:
        if layer.get("class_name") == "InputLayer":
            raise ArchitectureError(f"a second input {_name(layer)!r} in a Sequential model")
        shape = totals.add(layer, [shape])
    return _summary(len(layers), totals, first, shape)


def _history_names(args: object) -> Iterator[str]:
    for obj in _walk(args):
        if obj.get("class_name") == _TENSOR:
            history = (obj.get("config") or {}).get("keras_history")
            if not isinstance(history, list) or not history or not isinstance(history[0], str):
                raise ArchitectureError("a layer input has no keras_history")
            yield history[0]


def _functional(
    layers: list[dict[str, Any]], config: dict[str, Any], size: int | None, channels: int | None
) -> ArchitectureSummary:
    """Shapes through the graph, in the config's (topological) layer order."""
    shapes: dict[str, Shape] = {}
    totals = _Totals()
    inputs: list[Shape] = []
    for layer in layers:
        name = layer.get("name") or _name(layer)
        if not isinstance(name, str) or name in shapes:
            raise ArchitectureError(f"layer name {name!r} is missing or used twice")
        if layer.get("class_name") == "InputLayer":
            shapes[name] = _input_shape(layer, size, channels)
            inputs.append(shapes[name])
            continue
        nodes = layer.get("inbound_nodes")
        if not isinstance(nodes, list) or len(nodes) != 1:
            raise ArchitectureError(
                f"layer {name!r} must be called exactly once (shared layers are not supported)"
            )
        sources = list(_history_names(nodes[0]))
        missing = [s for s in sources if s not in shapes]
        if not sources or missing:
            raise ArchitectureError(f"layer {name!r} reads unknown or later layers {missing}")
        shapes[name] = totals.add(layer, [shapes[s] for s in sources])
    if len(inputs) != 1:
        raise ArchitectureError(f"the model must have exactly one image input, has {len(inputs)}")
    outputs = list(_history_names_of_refs(config.get("output_layers")))
    if len(outputs) != 1 or outputs[0] not in shapes:
        raise ArchitectureError(f"the model must have exactly one output, has {outputs}")
    return _summary(len(layers), totals, inputs[0], shapes[outputs[0]])


def _history_names_of_refs(refs: object) -> Iterator[str]:
    """Layer names of `output_layers`: ["name", 0, 0] or [["name", 0, 0], ...]."""
    if isinstance(refs, list) and refs and isinstance(refs[0], str):
        yield refs[0]
    elif isinstance(refs, list):
        for ref in refs:
            yield from _history_names_of_refs(ref)


# --- per-layer shape, parameter and FLOP rules ------------------------------------------------

LayerRule = Callable[[dict[str, Any], list[Shape]], tuple[Shape, int, int]]


def _pair(value: object) -> tuple[int, int]:
    pair = [value, value] if isinstance(value, int) else value
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise ArchitectureError(f"expected a positive int or pair, got {value!r}")
    first, second = pair
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ArchitectureError(f"expected a positive int or pair, got {value!r}")
    return int(first), int(second)


def _positive(config: dict[str, Any], key: str, default: int | None = None) -> int:
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ArchitectureError(f"{key} must be a positive int, got {value!r}")
    return value


def _image(inputs: list[Shape], config: dict[str, Any]) -> Shape:
    (shape,) = inputs
    if config.get("data_format", "channels_last") != "channels_last":
        raise ArchitectureError("only data_format channels_last is supported")
    if len(shape) != 3:
        raise ArchitectureError(f"needs an image input (height, width, channels), got {shape}")
    return shape


def _spatial(size: int, kernel: int, stride: int, dilation: int, padding: object) -> int:
    if padding == "same":
        return -(-size // stride)
    if padding != "valid":
        raise ArchitectureError(f"padding must be 'same' or 'valid', got {padding!r}")
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _window(config: dict[str, Any], shape: Shape, kernel: object, strides: object) -> Shape:
    kh, kw = _pair(kernel)
    sh, sw = _pair(strides)
    dh, dw = _pair(config.get("dilation_rate", 1))
    padding = config.get("padding", "valid")
    return (
        _spatial(shape[0], kh, sh, dh, padding),
        _spatial(shape[1], kw, sw, dw, padding),
    )


def _conv2d(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    filters, groups = _positive(config, "filters"), _positive(config, "groups", 1)
    kh, kw = _pair(config["kernel_size"])
    oh, ow = _window(config, shape, config["kernel_size"], config.get("strides", 1))
    weights = kh * kw * (shape[2] // groups) * filters
    bias = filters if config.get("use_bias", True) else 0
    return (oh, ow, filters), weights + bias, 2 * oh * ow * weights


def _depthwise(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    out = shape[2] * _positive(config, "depth_multiplier", 1)
    kh, kw = _pair(config["kernel_size"])
    oh, ow = _window(config, shape, config["kernel_size"], config.get("strides", 1))
    bias = out if config.get("use_bias", True) else 0
    return (oh, ow, out), kh * kw * out + bias, 2 * oh * ow * kh * kw * out


def _separable(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    (oh, ow, mid), depthwise, flops = _depthwise({**config, "use_bias": False}, inputs)
    filters = _positive(config, "filters")
    bias = filters if config.get("use_bias", True) else 0
    return (oh, ow, filters), depthwise + mid * filters + bias, flops + 2 * oh * ow * mid * filters


def _dense(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    (shape,) = inputs
    units = _positive(config, "units")
    weights = shape[-1] * units
    bias = units if config.get("use_bias", True) else 0
    return (*shape[:-1], units), weights + bias, 2 * math.prod(shape[:-1]) * weights


def _pool(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    pool = config.get("pool_size", 2)
    oh, ow = _window({**config, "dilation_rate": 1}, shape, pool, config.get("strides") or pool)
    return (oh, ow, shape[2]), 0, 0


def _global_pool(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    return ((1, 1, shape[2]) if config.get("keepdims") else (shape[2],)), 0, 0


def _same(_: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    (shape,) = inputs
    return shape, 0, 0


def _per_channel(count: int) -> LayerRule:
    def rule(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
        (shape,) = inputs
        return shape, count * shape[-1], 0

    return rule


def _flatten(_: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    (shape,) = inputs
    return (math.prod(shape),), 0, 0


def _reshape(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    (shape,) = inputs
    target = [int(d) for d in config["target_shape"]]
    total, known = math.prod(shape), math.prod(d for d in target if d != -1)
    if target.count(-1) > 1 or known < 1:
        raise ArchitectureError(f"bad target_shape {target}")
    if -1 in target:
        target[target.index(-1)] = total // known
    if math.prod(target) != total:
        raise ArchitectureError(f"cannot reshape {shape} to {tuple(target)}")
    return tuple(target), 0, 0


def _padding_pair(value: object) -> tuple[int, int]:
    pair = [value, value] if isinstance(value, int) else value
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise ArchitectureError(f"expected an int or a pair, got {value!r}")
    first, second = pair
    return int(first), int(second)


def _padding_pairs(value: object) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(value, int):
        return (value, value), (value, value)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ArchitectureError(f"expected an int or two pairs, got {value!r}")
    return _padding_pair(value[0]), _padding_pair(value[1])


def _zero_padding(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    (top, bottom), (left, right) = _padding_pairs(config.get("padding", 1))
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2]), 0, 0


def _cropping(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    (top, bottom), (left, right) = _padding_pairs(config.get("cropping", 0))
    return (shape[0] - top - bottom, shape[1] - left - right, shape[2]), 0, 0


def _upsampling(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    shape = _image(inputs, config)
    sh, sw = _pair(config.get("size", 2))
    return (shape[0] * sh, shape[1] * sw, shape[2]), 0, 0


def _merge(_: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    """Elementwise merges, with broadcasting (a squeeze-and-excite (1, 1, C) times (H, W, C))."""
    if len(inputs) < 2 or len({len(s) for s in inputs}) != 1:
        raise ArchitectureError(f"needs two or more inputs of one rank, got {inputs}")
    out = []
    for dims in zip(*inputs, strict=True):
        wide = max(dims)
        if any(d not in (1, wide) for d in dims):
            raise ArchitectureError(f"input shapes {inputs} do not match")
        out.append(wide)
    return tuple(out), 0, 0


def _concatenate(config: dict[str, Any], inputs: list[Shape]) -> tuple[Shape, int, int]:
    axis = config.get("axis", -1)
    rank = len(inputs[0])
    axis = axis - 1 if axis > 0 else axis + rank  # config axes count the batch dimension
    if len(inputs) < 2 or any(len(s) != rank for s in inputs) or not 0 <= axis < rank:
        raise ArchitectureError(f"cannot concatenate {inputs} on axis {config.get('axis')}")
    rest = {s[:axis] + s[axis + 1 :] for s in inputs}
    if len(rest) != 1:
        raise ArchitectureError(f"cannot concatenate {inputs}: other dimensions differ")
    shape = list(inputs[0])
    shape[axis] = sum(s[axis] for s in inputs)
    return tuple(shape), 0, 0


_ELEMENTWISE = [
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Rescaling",
    "Identity",
    "ActivityRegularization",
]
LAYERS: dict[str, LayerRule] = {
    "InputLayer": _same,
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv2D": _separable,
    "Dense": _dense,
    "BatchNormalization": _per_channel(4),
    "LayerNormalization": _per_channel(2),
    "Normalization": _per_channel(2),
    "MaxPooling2D": _pool,
    "AveragePooling2D": _pool,
    "GlobalAveragePooling2D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "ZeroPadding2D": _zero_padding,
    "Cropping2D": _cropping,
    "UpSampling2D": _upsampling,
    "Add": _merge,
    "Subtract": _merge,
    "Multiply": _merge,
    "Average": _merge,
    "Maximum": _merge,
    "Minimum": _merge,
    "Concatenate": _concatenate,
    **dict.fromkeys(_ELEMENTWISE, _same),
}
