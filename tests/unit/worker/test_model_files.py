"""Workers load only models the service produced: digest-checked first, then Keras safe_mode."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import keras
import numpy as np
import pytest

from tass.contract.artifacts import ArtifactError
from tass.core.objectstore import ObjectExistsError
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.trainer.errors import ModelFileError
from tass.trainer.saving import load_model
from tass.worker.context import WorkerContext
from tass.worker.evaluate_job import fetch_model_file
from tests.support.seed import seed_trained_model


def lambda_model(path) -> None:
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(path)


def test_a_crafted_model_with_a_lambda_layer_is_refused(tmp_path):
    path = tmp_path / "evil.keras"
    lambda_model(path)
    with pytest.raises(ModelFileError, match=r"evil\.keras"):
        load_model(path)


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def store_model(ctx: WorkerContext, payload: bytes) -> str:
    with ctx.sessions.begin() as session:
        model = seed_trained_model(
            session, ctx.store, payload, tenant="t", key="models/m/model.keras"
        )
        return model.id


def test_a_model_file_changed_in_the_store_is_refused_before_loading(ctx, tmp_path):
    model_id = store_model(ctx, b"the real weights")
    # the service never overwrites a key; this simulates bytes changed behind its back
    (Path(urlparse(ctx.store.url).path) / "models/m/model.keras").write_bytes(b"tampered bytes")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_model_file(ctx, model_id, tmp_path / "download.keras")
    assert list(tmp_path.glob("download.keras*")) == []  # neither the file nor a part of it


def test_an_intact_model_file_is_fetched(ctx, tmp_path):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "ok.keras")
    model_id = store_model(ctx, (tmp_path / "ok.keras").read_bytes())
    fetched = fetch_model_file(ctx, model_id, tmp_path / "fetched.keras")
    prediction = load_model(fetched).predict(np.zeros((1, 4), np.float32), verbose=0)
    assert prediction.shape == (1, 2)


def test_a_stored_key_is_never_overwritten(ctx):
    ctx.store.put_bytes("jobs/j/attempt-1/checkpoints/epoch-0001/model.keras", b"first")
    with pytest.raises(ObjectExistsError, match="never overwritten"):
        ctx.store.put_bytes("jobs/j/attempt-1/checkpoints/epoch-0001/model.keras", b"second")
    with pytest.raises(ObjectExistsError):
        ctx.store.put_file("jobs/j/attempt-1/checkpoints/epoch-0001/model.keras", Path(__file__))
    got = b"".join(ctx.store.iter_range("jobs/j/attempt-1/checkpoints/epoch-0001/model.keras"))
    assert got == b"first"
