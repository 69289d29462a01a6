"""A generated, learnable dataset: each class is a coloured stripe pattern plus noise."""

from __future__ import annotations

import numpy as np

from tass.trainer.data.dataset import Dataset

_TEMPLATE_SEED = 20240601  # fixed so the train and test splits share the class patterns


def _templates(num_classes: int) -> np.ndarray:
    """One float (32, 32, 3) pattern in [0, 1] per class: a colour plus flip-invariant stripes."""
    rng = np.random.default_rng(_TEMPLATE_SEED + num_classes)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 32.0
    out = np.empty((num_classes, 32, 32, 3), np.float32)
    for c in range(num_classes):
        freq = 1.0 + (c % 4)
        wave = np.cos(2 * np.pi * freq * (yy if c % 2 else (xx - 0.5 + 1 / 64)))
        colour = rng.uniform(0.25, 0.75, size=3).astype(np.float32)
        out[c] = colour + 0.2 * wave[..., None]
    return out


def synthetic_dataset(
    num_examples: int, num_classes: int, split: str = "train", seed: int = 0
) -> Dataset:
    """`num_examples` noisy images of `num_classes` patterns; the splits draw different noise."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    templates = _templates(num_classes)
    y = np.arange(num_examples) % num_classes
    rng.shuffle(y)
    brightness = rng.uniform(-0.15, 0.15, size=(num_examples, 1, 1, 1)).astype(np.float32)
    noise = rng.normal(0.0, 0.12, size=(num_examples, 32, 32, 3)).astype(np.float32)
    images = templates[y] + brightness + noise
    x = np.clip(images * 255.0, 0, 255).astype(np.uint8)
    return Dataset(x, y.astype(np.int64), [f"class_{c}" for c in range(num_classes)])
