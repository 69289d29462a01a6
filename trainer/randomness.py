"""Every random stream of a run derived from (seed, step), so a resumed run repeats the original.

Shuffling and augmentation are stateless already (`trainer.pipeline` keys them on seed, epoch
and batch). What remains is the layers' own randomness: each Dropout layer draws its masks from
a Keras `SeedGenerator`, a variable holding `[seed, counter]` that advances by one per training
step. The .keras format does not save that variable, so a model loaded from a checkpoint would
restart every counter at zero and draw different masks from the uninterrupted run.
`align_layer_randomness` sets each generator to `[seed derived from (run seed, position),
optimizer step]`, which is exactly the state the uninterrupted run has at that step.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np

SEED_STATE = "seed_generator_state"


def _layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    yield layer
    for child in getattr(layer, "layers", []):
        yield from _layers(child)


def seed_states(model: keras.Model) -> list[keras.Variable]:
    """The state variables of every SeedGenerator that `model`'s layers own, in layer order."""
    found: list[keras.Variable] = []
    seen: set[int] = set()
    for layer in _layers(model):
        for variable in layer.variables:
            if variable.name == SEED_STATE and id(variable) not in seen:
                seen.add(id(variable))
                found.append(variable)
    return found


def layer_seed(run_seed: int, position: int) -> int:
    """A well-mixed 31-bit seed for the `position`-th generator of a run seeded `run_seed`."""
    return int(np.random.SeedSequence([run_seed, position]).generate_state(1)[0] & 0x7FFFFFFF)


def align_layer_randomness(model: keras.Model, run_seed: int, step: int) -> int:
    """Put every layer generator where an uninterrupted run has it after `step` training steps.

    Returns how many generators were set.
    """
    states = seed_states(model)
    for position, variable in enumerate(states):
        value = np.array([layer_seed(run_seed, position), step], dtype=variable.dtype)
        variable.assign(value)
    return len(states)
