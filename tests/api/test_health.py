"""Probes, start-up refusal on an old schema, and 503 (not 500) while the database is down."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tass.core.db import make_engine, make_session_factory
from tass.core.settings import Settings
from tass.migrations.runner import SchemaOutOfDate


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "store": "ok"}


def test_ready_is_503_naming_the_broker_when_it_is_unreachable(settings, db):
    app = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["database"] == "ok"


def test_api_refuses_to_start_on_an_unmigrated_database(tmp_path):
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    with pytest.raises(SchemaOutOfDate, match="tass migrate"), TestClient(create_app(settings)):
        pass


def test_database_outage_is_503_not_500(client):
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    client.app.state.session_factory = make_session_factory(dead)
    response = client.get("/v1/jobs")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "database is unavailable" in response.json()["detail"]
