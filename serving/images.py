"""Uploaded images -> model inputs: PNG or JPEG only, dimensions read from the header before
anything is decoded, decoded and resized to the model's input: uint8 pixels for models that
take them (every model exported with the uint8 contract), else scaled to [0, 1] as training
and evaluation scale (older exports)."""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from tass.trainer.data.image_header import read_image_header
from tass.trainer.errors import DataError

ACCEPTED_FORMATS = frozenset({"png", "jpeg"})
# a decoded image of this many pixels is ~150 MB of uint8 RGB: larger ones are refused
MAX_PIXELS = 50_000_000


class BadImage(ValueError):
    """One upload is not a usable image; `index` and `name` say which."""

    def __init__(self, index: int, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.index, self.name = index, name


def _checked(index: int, name: str, raw: bytes) -> int:
    """The image's pixel count, from its header; BadImage unless a usable PNG or JPEG."""
    try:
        kind, width, height, _ = read_image_header(io.BytesIO(raw), name)
    except DataError as exc:
        raise BadImage(index, name, "not a PNG or JPEG image") from exc
    if kind not in ACCEPTED_FORMATS:
        raise BadImage(index, name, f"a {kind.upper()} image; send PNG or JPEG")
    if width * height > MAX_PIXELS or width == 0 or height == 0:
        raise BadImage(index, name, f"{width}x{height} pixels is not a usable size")
    return width * height


def check_uploads(images: list[tuple[str, bytes]], max_pixels: int) -> None:
    """Every upload a usable PNG or JPEG, and all of them together at most `max_pixels`
    decoded pixels (TASS_SERVE_MAX_REQUEST_MEGAPIXELS), read from their headers before
    anything is decoded: a small PNG can hold 50 megapixels, ~150 MB decoded."""
    total = 0
    for index, (name, raw) in enumerate(images):
        total += _checked(index, name, raw)
        if total > max_pixels:
            raise BadImage(
                index,
                name,
                f"the request's images decode to more than {max_pixels / 1e6:g} megapixels; "
                "send fewer or smaller images",
            )


def to_inputs(
    images: list[tuple[str, bytes]], size: tuple[int, int, int], *, pixels: bool = False
) -> np.ndarray:
    """[N, height, width, channels]: uint8 0-255 when `pixels`, else float32 in [0, 1];
    BadImage names the first bad upload."""
    height, width, channels = size
    batch = np.empty((len(images), height, width, channels), np.uint8 if pixels else np.float32)
    for index, (name, raw) in enumerate(images):
        _checked(index, name, raw)
        try:
            decoded = tf.io.decode_image(raw, channels=channels, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as exc:
            raise BadImage(index, name, "not a decodable PNG or JPEG image") from exc
        if decoded.shape[0] != height or decoded.shape[1] != width:
            decoded = tf.image.resize(decoded, (height, width), antialias=True)
        values = np.clip(np.asarray(decoded, np.float32), 0.0, 255.0)  # resizing may overshoot
        batch[index] = np.round(values) if pixels else values * (1.0 / 255.0)
    return batch
