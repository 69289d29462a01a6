"""Learning-rate schedules: shapes over the run and serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tass.contract.spec import TrainSpec
from tass.trainer.schedules import OneCycle, WarmupSchedule, make_optimizer


def values(schedule, steps: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([float(schedule(s)) for s in range(steps)])


def test_one_cycle_rises_to_the_peak_then_anneals_to_almost_zero() -> None:
    lr = values(OneCycle(0.4, 100), 100)
    assert lr[0] == pytest.approx(0.04)
    assert lr.max() == pytest.approx(0.4) and 20 <= lr.argmax() <= 30
    assert lr[-1] < 0.01
    assert (np.diff(lr[30:]) <= 1e-9).all()


def test_warmup_then_cosine_or_constant() -> None:
    cosine = values(WarmupSchedule(1.0, 100, warmup_steps=10, decay="cosine"), 100)
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert cosine[55] == pytest.approx(0.5, abs=0.05) and cosine[-1] < 0.01
    constant = values(WarmupSchedule(0.3, 100), 100)
    np.testing.assert_allclose(constant, 0.3)


@pytest.mark.parametrize("schedule", ["one-cycle", "cosine", "constant"])
def test_schedules_survive_serialisation(schedule: str) -> None:
    spec = TrainSpec(schedule=schedule, epochs=4, warmup_epochs=1)
    original = make_optimizer(spec, steps_per_epoch=10)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(original))
    assert type(restored) is type(original)
    assert restored.get_config()["learning_rate"] == original.get_config()["learning_rate"]
    schedule_obj = keras.saving.deserialize_keras_object(restored.get_config()["learning_rate"])
    assert float(schedule_obj(2)) < float(schedule_obj(12)) <= spec.learning_rate + 1e-6


def test_weight_decay_skips_batchnorm_and_bias() -> None:
    opt = make_optimizer(TrainSpec(optimizer="sgd", weight_decay=1e-3), steps_per_epoch=10)
    kernel = keras.Variable(np.ones((2, 2), np.float32), name="kernel")
    gamma = keras.Variable(np.ones(2, np.float32), name="gamma")
    opt.build([kernel, gamma])
    assert opt._use_weight_decay(kernel) and not opt._use_weight_decay(gamma)
