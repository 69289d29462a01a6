"""The tf.data pipeline: scaled, shuffled per epoch, augmented, deterministic for a seed."""

from __future__ import annotations

import numpy as np

from tass.contract.spec import Augmentation
from tass.trainer.data import Dataset
from tass.trainer.data.synthetic import synthetic_dataset
from tass.trainer.pipeline import augment, eval_dataset, steps_per_epoch, train_dataset

NO_AUG = Augmentation(horizontal_flip=False, crop_padding=0)


def batches(ds) -> list[tuple[np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_train_batches_are_scaled_floats_covering_every_example_each_epoch() -> None:
    data = synthetic_dataset(70, 7)
    out = batches(train_dataset(data, 16, None, seed=0, first_epoch=0, epochs=2))
    assert len(out) == 2 * steps_per_epoch(70, 16) == 10
    x, _ = out[0]
    assert x.dtype == np.float32 and x.shape == (16, 32, 32, 3)
    assert x.min() >= 0.0 and x.max() <= 1.0
    epoch1 = np.concatenate([y for _, y in out[:5]])
    epoch2 = np.concatenate([y for _, y in out[5:]])
    assert sorted(epoch1.tolist()) == sorted(data.y.tolist()) == sorted(epoch2.tolist())
    assert epoch1.tolist() != epoch2.tolist()  # reshuffled each epoch
    all_images = np.concatenate([x for x, _ in out[:5]])
    np.testing.assert_allclose(
        np.sort(all_images.sum(axis=(1, 2, 3))),
        np.sort((data.x / 255.0).sum(axis=(1, 2, 3))),
        rtol=1e-5,
    )


def test_same_seed_same_batches_and_resume_sees_the_same_epoch() -> None:
    data = synthetic_dataset(40, 4)
    aug = Augmentation(horizontal_flip=True, crop_padding=4, translate=0.1)
    full = batches(train_dataset(data, 16, aug, seed=5, first_epoch=0, epochs=3))
    again = batches(train_dataset(data, 16, aug, seed=5, first_epoch=0, epochs=3))
    resumed = batches(train_dataset(data, 16, aug, seed=5, first_epoch=2, epochs=3))
    other = batches(train_dataset(data, 16, aug, seed=6, first_epoch=0, epochs=3))
    for (xa, ya), (xb, yb) in zip(full, again, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(full[6:], resumed, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(full[0][0], other[0][0])


def test_augmentation_flips_and_shifts_but_keeps_shape_and_pixels() -> None:
    import tensorflow as tf

    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 10:14, 3:5] = 255  # a small block left of centre
    stack = np.repeat(image, 64, axis=0)
    seed = tf.constant([1, 2], tf.int64)
    flipped = augment(tf.constant(stack), Augmentation(horizontal_flip=True, crop_padding=0), seed)
    flipped = flipped.numpy()
    mirrored = (flipped == stack[:, :, ::-1]).all(axis=(1, 2, 3))
    unchanged = (flipped == stack).all(axis=(1, 2, 3))
    assert (mirrored | unchanged).all() and mirrored.any() and unchanged.any()
    shifted = augment(tf.constant(stack), Augmentation(horizontal_flip=False, crop_padding=2), seed)
    shifted = shifted.numpy()
    assert shifted.shape == stack.shape
    assert len({s.tobytes() for s in shifted}) > 5  # different offsets per image
    assert (shifted.reshape(64, -1).max(axis=1) == 255).all()  # the block stays in view
    same = augment(tf.constant(stack), NO_AUG, seed).numpy()
    np.testing.assert_array_equal(same, stack)


def test_eval_dataset_keeps_order_and_has_no_augmentation() -> None:
    data = Dataset(
        np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8),
        np.arange(10) % 2,
        ["a", "b"],
    )
    out = batches(eval_dataset(data, 4))
    x = np.concatenate([b[0] for b in out])
    np.testing.assert_allclose(x[:, 0, 0, 0] * 255, np.arange(10), atol=1e-4)
    assert np.concatenate([b[1] for b in out]).tolist() == (np.arange(10) % 2).tolist()
