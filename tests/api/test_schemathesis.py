"""Property-based API fuzzing against our own OpenAPI document (schemathesis, bounded number
of examples): with a valid key, no request may produce a 5xx, and every response must match
the schema it documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from core.apikeys import create_key
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.settings import Settings


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{root / 'fuzz.db'}"
    upgrade(url)
    with make_session_factory(make_engine(url)).begin() as session:
        _, key = create_key(session, "fuzz")
    app = create_app(
        Settings(
            data_dir=root,
            database_url=url,
            broker_url="memory://",
            artifact_url=(root / "artifacts").as_uri(),
            data_roots=[root],
            rate_limit="100000/minute",
            sse_poll_seconds=0.01,
            public_docs=True,  # schemathesis reads /openapi.json without a key
        )
    )
    with TestClient(app):
        app.state.fuzz_key = key
        yield app


def test_no_5xx_and_responses_match_the_schema(fuzz_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.state.fuzz_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case):
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        fuzz()
