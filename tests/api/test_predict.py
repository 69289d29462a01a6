"""POST /v1/models/{ref}/predict through the API to the serving app (in process): predictions
equal the downloaded model's own, references and alias moves, bad uploads, bad models,
isolation and an unreachable serving process."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import time

import httpx
import keras
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tass.client.cli import CliState
from tass.client.cli import app as tass
from tass.core.objectstore import ObjectStore
from tass.operators import service
from tass.serving.app import create_app as create_serving_app
from tests.api.conftest import bearer
from tests.support.models import (
    jpeg,
    legacy_tiny_model_file,
    png,
    random_pixels,
    tiny_model_file,
)
from tests.support.processes import Service, free_port, service_env, wait_http
from tests.support.seed import seed_trained_model

CLASSES = ["cat", "dog", "frog"]


@pytest.fixture
def serving(client, settings):
    """The API's serving client talks to an in-process serving app."""
    app = create_serving_app(settings)
    client.app.state.serving_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://serving"
    )
    return app


@pytest.fixture
def stored(db, settings, tmp_path):
    """Stores a model file for a tenant; returns its model id."""
    store = ObjectStore(settings.resolved_artifact_url)

    def make(payload: bytes, tenant: str = "acme") -> str:
        with db() as session:
            model = seed_trained_model(session, store, payload, tenant=tenant, class_names=CLASSES)
            session.commit()
            return model.id

    return make


@pytest.fixture
def tiny(stored, tmp_path):
    return stored(tiny_model_file(tmp_path, CLASSES, seed=1).read_bytes())


@pytest.fixture
def legacy(stored, tmp_path):
    """A model published before the uint8 contract: float [0, 1] input, uncompiled."""
    return stored(legacy_tiny_model_file(tmp_path, CLASSES, seed=3).read_bytes())


def expected_probabilities(model_bytes: bytes, files: list[bytes], tmp_path) -> np.ndarray:
    """What the downloaded model predicts after decoding and resizing to 32x32: given the
    uint8 pixels (rounded after a resize) when it takes uint8, else scaled to [0, 1]."""
    path = tmp_path / "downloaded.keras"
    path.write_bytes(model_bytes)
    model = keras.models.load_model(path)
    pixels = model.inputs[0].dtype == "uint8"
    batch = []
    for raw in files:
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
        if image.shape[:2] != (32, 32):
            image = tf.image.resize(image, (32, 32), antialias=True)
        values = np.clip(np.asarray(image, np.float32), 0, 255)
        batch.append(np.round(values).astype(np.uint8) if pixels else values / 255.0)
    return model.predict(np.stack(batch), verbose=0)


def test_an_older_float_input_model_still_serves_its_own_predictions(
    client, serving, legacy, tmp_path
):
    files = [png(random_pixels(1)[0]), png(random_pixels(1, 75, 50, seed=2)[0])]
    response = client.post(
        f"/v1/models/{legacy}/predict",
        files=[("files", (f"img{i}", io.BytesIO(raw), "image/png")) for i, raw in enumerate(files)],
    )
    assert response.status_code == 200, response.text
    downloaded = client.get(f"/v1/models/{legacy}/download").content
    expected = expected_probabilities(downloaded, files, tmp_path)
    got = [[p["probabilities"][c] for c in CLASSES] for p in response.json()["predictions"]]
    np.testing.assert_allclose(np.array(got), expected, atol=1e-5)
    assert [p["label"] for p in response.json()["predictions"]] == [
        CLASSES[i] for i in expected.argmax(1)
    ]


def test_predictions_equal_the_downloaded_models_predict(client, serving, tiny, tmp_path):
    pixels = random_pixels(3)
    files = [png(pixels[0]), jpeg(pixels[1]), png(random_pixels(1, 75, 50, seed=2)[0])]
    response = client.post(
        f"/v1/models/{tiny}/predict",
        files=[("files", (f"img{i}", io.BytesIO(raw), "image/png")) for i, raw in enumerate(files)],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == tiny
    downloaded = client.get(f"/v1/models/{tiny}/download").content
    expected = expected_probabilities(downloaded, files, tmp_path)
    got = np.array([[p["probabilities"][c] for c in CLASSES] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["index"] for p in body["predictions"]] == list(expected.argmax(axis=1))
    assert [p["label"] for p in body["predictions"]] == [CLASSES[i] for i in expected.argmax(1)]

    as_json = client.post(
        f"/v1/models/{tiny}/predict",
        params={"top_k": 1},
        json={"instances": [base64.b64encode(raw).decode() for raw in files]},
    ).json()
    assert [p["label"] for p in as_json["predictions"]] == [p["label"] for p in body["predictions"]]
    assert all(len(p["probabilities"]) == 1 for p in as_json["predictions"])


def test_references_and_an_alias_move_take_effect_on_the_next_request(
    client, serving, stored, tiny, tmp_path
):
    other = stored(tiny_model_file(tmp_path, CLASSES, seed=2).read_bytes())
    client.post("/v1/registry/cats/versions", json={"model_id": tiny})
    client.post("/v1/registry/cats/versions", json={"model_id": other})
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}

    client.put("/v1/registry/cats/aliases/production", json={"version": 1})
    assert client.post("/v1/models/cats@production/predict", json=image).json()["model_id"] == tiny
    client.put("/v1/registry/cats/aliases/production", json={"version": 2})
    assert client.post("/v1/models/cats@production/predict", json=image).json()["model_id"] == other
    assert client.post("/v1/models/cats:1/predict", json=image).json()["model_id"] == tiny


def test_a_file_that_is_not_an_image_is_422_naming_it(client, serving, tiny):
    good = png(random_pixels(1)[0])
    response = client.post(
        f"/v1/models/{tiny}/predict",
        files=[
            ("files", ("ok.png", io.BytesIO(good), "image/png")),
            ("files", ("notes.txt", io.BytesIO(b"hello, not an image" * 10), "text/plain")),
        ],
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "files", 1] and "notes.txt" in error["msg"]
    truncated = client.post(f"/v1/models/{tiny}/predict", json={"instances": ["iVBORw0KGgo="]})
    assert truncated.status_code == 422
    assert truncated.json()["detail"][0]["loc"] == ["body", "instances", 0]
    not_base64 = client.post(f"/v1/models/{tiny}/predict", json={"instances": ["***"]})
    assert not_base64.status_code == 422
    for junk in (b"\xff\xfe not utf-8", b"not json", b'{"instances": "x"}'):
        refused = client.post(
            f"/v1/models/{tiny}/predict",
            content=junk,
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 422, junk


def test_too_many_or_too_large_uploads_are_refused(client, serving, settings, tiny):
    image = base64.b64encode(png(random_pixels(1)[0])).decode()
    limit = settings.max_predict_images
    many = client.post(f"/v1/models/{tiny}/predict", json={"instances": [image] * (limit + 1)})
    assert many.status_code == 422 and str(limit) in many.json()["detail"][0]["msg"]
    huge = client.post(
        f"/v1/models/{tiny}/predict",
        content=b"x" * (settings.max_predict_bytes + 1),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    empty = client.post(f"/v1/models/{tiny}/predict", json={"instances": []})
    assert empty.status_code == 422


def test_a_model_that_cannot_load_is_409_and_serving_keeps_answering(client, serving, stored, tiny):
    broken = stored(b"PK\x03\x04 this is not a keras file" * 20)
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}
    refused = client.post(f"/v1/models/{broken}/predict", json=image)
    assert refused.status_code == 409 and broken in refused.json()["detail"]
    assert client.post(f"/v1/models/{tiny}/predict", json=image).status_code == 200


def test_other_tenants_get_404(app, keys, serving, tiny):
    globex = TestClient(app, headers=bearer(keys["globex"]))
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}
    assert globex.post(f"/v1/models/{tiny}/predict", json=image).status_code == 404


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_a_prediction_never_queues_for_the_sqlite_write_lock(client, serving, tiny, engine):
    """A prediction only reads: its key check and model lookup run beside a writer."""
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}
    assert client.post(f"/v1/models/{tiny}/predict", json=image).status_code == 200  # warm
    with engine.connect() as writer:
        writer.exec_driver_sql("COMMIT")  # end the BEGIN IMMEDIATE the engine sent
        writer.exec_driver_sql("BEGIN IMMEDIATE")  # what a worker's heartbeat write holds
        started = time.monotonic()
        response = client.post(f"/v1/models/{tiny}/predict", json=image)
        elapsed = time.monotonic() - started
        writer.exec_driver_sql("ROLLBACK")
    assert response.status_code == 200, response.text
    assert elapsed < 5, "the prediction waited for the write lock (busy_timeout is 30 s)"


def test_an_unreachable_serving_process_is_503(client, tiny):
    client.app.state.serving_client = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=5)
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}
    response = client.post(f"/v1/models/{tiny}/predict", json=image)
    assert response.status_code == 503 and "serving" in response.json()["detail"]


def test_tass_predict_prints_the_top_classes_per_image(client, keys, serving, tiny, tmp_path):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("TASS_API_KEY", keys["acme"])
    images = []
    for index, pixels in enumerate(random_pixels(2, seed=5)):
        images.append(tmp_path / f"photo{index}.png")
        images[-1].write_bytes(png(pixels))
    state = CliState(url="http://testserver", transport=client._transport)
    try:
        shown = CliRunner().invoke(tass, ["predict", tiny, *map(str, images), "-k", "2"], obj=state)
        as_json = CliRunner().invoke(tass, ["predict", tiny, str(images[0]), "--json"], obj=state)
    finally:
        monkeypatch.undo()
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if "photo" in line]
    assert len(rows) == 2 and all(any(c in row for c in CLASSES) for row in rows)
    answer = json.loads(as_json.stdout)
    assert answer["model_id"] == tiny and len(answer["predictions"][0]["probabilities"]) == 3


@pytest.mark.integration
def test_the_serving_process_killed_and_restarted(client, settings, tiny, tmp_path):
    port = free_port()
    env = service_env(
        {"TASS_DATA_DIR": str(settings.data_dir), "TASS_ARTIFACT_URL": settings.artifact_url}
    )
    argv = service.serve_command("127.0.0.1", port)
    client.app.state.serving_client = httpx.AsyncClient(  # no pooled connection: the test
        base_url=f"http://127.0.0.1:{port}",  # client runs each request on a new event loop
        timeout=30,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    image = {"instances": [base64.b64encode(png(random_pixels(1)[0])).decode()]}
    serving_process = Service("serving", argv, env, tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serving_process, timeout=120)
        first = client.post(f"/v1/models/{tiny}/predict", json=image)
        assert first.status_code == 200, first.text
        os.killpg(serving_process.proc.pid, signal.SIGKILL)
        serving_process.proc.wait()
        assert client.post(f"/v1/models/{tiny}/predict", json=image).status_code == 503
        serving_process.stop()
        serving_process = Service("serving-restarted", argv, env, tmp_path)
        wait_http(f"http://127.0.0.1:{port}/healthz", serving_process, timeout=120)
        again = client.post(f"/v1/models/{tiny}/predict", json=image)
        assert again.status_code == 200 and again.json() == first.json()
    finally:
        serving_process.stop()
