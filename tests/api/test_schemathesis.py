"""Property-based API fuzzing against our own OpenAPI document (schemathesis, bounded number
of examples): with a valid key, no request may produce a 5xx, and every response must match
the schema it documents. A second pass sends hand-picked hostile shapes (non-finite numbers,
lone surrogates, huge integers, long path components, crafted cursors) everywhere."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tass.api.app import create_app
from tass.contract.spec import TrainSpec
from tass.core.apikeys import create_key
from tass.core.datasets import ARCHIVE_FORMATS
from tass.core.db import make_engine, make_session_factory
from tass.core.settings import Settings
from tass.migrations.runner import upgrade

# dataset uploads take the archive's raw bytes: sent as the octet streams they are
schemathesis.serializer.alias(list(ARCHIVE_FORMATS), "application/octet-stream")


def cursor_text(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


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
            allowed_hosts=["testserver"],  # the Host its ASGI client sends
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


# Hand-picked hostile shapes (what the black-box review found): sent on every operation, in
# every path parameter, query parameter, body field and the headers the API reads.
HOSTILE_TEXT = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 400,
    "%ED%A0%80",  # the UTF-8 bytes of a lone surrogate
    "%00",
    "x" * 300,
    "../" * 12 + "etc/passwd",
    cursor_text("2026-01-01T00:00:00|abc"),  # a naive timestamp
    cursor_text("9999-12-31T23:59:59-23:59|abc"),  # overflows on conversion to UTC
    cursor_text("0001-01-01T00:00:00+23:59|" + "x" * 100),
]
HOSTILE_JSON = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "92233720368547758080",
    "1" + "0" * 5000,  # past Python's int-parsing limit
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"' + "y" * 300 + '"',
    '"/' + "z" * 300 + '/data"',
    "null",
    "[]",
    "{}",
]
HOSTILE_HEADERS = ["Idempotency-Key", "Range", "If-None-Match", "Last-Event-ID", "Origin"]
PLACEHOLDER = "__HOSTILE__"


def body_leaves(value: object, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in body_leaves(item, (*path, key))]
    return [path]


def with_placeholder(body: dict, path: tuple) -> str:
    """`body` as JSON text with the value at `path` replaced by PLACEHOLDER (a bare token)."""
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = PLACEHOLDER
    return json.dumps(copy).replace(f'"{PLACEHOLDER}"', PLACEHOLDER)


def hostile_requests(schema: dict, ids: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(method, url, extra httpx arguments) for every operation and every hostile shape."""
    requests = []
    for template, methods in schema["paths"].items():
        for method, operation in methods.items():
            params = operation.get("parameters", [])
            path_names = [p["name"] for p in params if p["in"] == "path"]
            real = template
            for name in path_names:
                real = real.replace("{" + name + "}", ids.get(name, "nope"))
            streams = real.endswith("/events")
            for name in path_names:
                for text in HOSTILE_TEXT:
                    url = template
                    for other in path_names:
                        url = url.replace("{" + other + "}", text if other == name else "nope")
                    requests.append((method, url, {}))
            for param in (p for p in params if p["in"] == "query"):
                for text in HOSTILE_TEXT:
                    target = template if streams else real
                    requests.append((method, f"{target}?{param['name']}={text}", {}))
            for header in HOSTILE_HEADERS:
                for text in HOSTILE_TEXT:
                    requests.append(
                        (method, template if streams else real, {"headers": {header: text}})
                    )
    return requests


def hostile_bodies(schema: dict) -> list[tuple[str, str]]:
    """(url, JSON text): every field of a full train and evaluate submission, and a few
    fields of every other operation that reads a JSON body, set to each hostile token."""
    bodies = [("/v1/jobs", body) for body in job_bodies()]
    for url, methods in schema["paths"].items():
        if url == "/v1/jobs" or "{" in url or "requestBody" not in methods.get("post", {}):
            continue
        for field in ("name", "type", "spec", "dataset", "search_space"):
            template = json.dumps({"type": "train", "name": "n", field: PLACEHOLDER})
            template = template.replace(f'"{PLACEHOLDER}"', PLACEHOLDER)
            bodies += [(url, template.replace(PLACEHOLDER, token)) for token in HOSTILE_JSON]
    return bodies


def job_bodies() -> list[str]:
    train = {
        "type": "train",
        "name": "n",
        "tags": {"k": "v"},
        "spec": TrainSpec().model_dump(mode="json"),
        "dataset": {"source": "image-folder", "path": "images", "limit": 5, "split": "train"},
    }
    evaluate = {"type": "evaluate", "model_id": "m", "dataset": {"source": "synthetic"}}
    bodies = []
    for base in (train, evaluate):
        for path in body_leaves(base):
            template = with_placeholder(base, path)
            bodies += [template.replace(PLACEHOLDER, token) for token in HOSTILE_JSON]
    return bodies


def test_hostile_shapes_on_every_operation_give_no_5xx(fuzz_app):
    key = fuzz_app.state.fuzz_key
    client = TestClient(fuzz_app, headers={"Authorization": f"Bearer {key}"})
    job = client.post("/v1/jobs", json={"type": "train", "dataset": {"source": "synthetic"}})
    ids = {"job_id": job.json()["id"], "model_id": "nope"}
    requests = hostile_requests(fuzz_app.openapi(), ids)
    bodies = hostile_bodies(fuzz_app.openapi())
    assert len(requests) > 500 and len(bodies) > 300
    failures = []
    for method, url, extra in requests:
        response = client.request(method.upper(), url, **extra)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {method.upper()} {url} {extra}")
    for url, body in bodies:
        response = client.post(
            url, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        if response.status_code >= 500:
            failures.append(f"{response.status_code} POST {url} {body[:200]}")
        elif response.status_code == 202 and url == "/v1/jobs":
            client.post(f"/v1/jobs/{response.json()['id']}/cancel")  # stay under the quota
    assert not failures, "\n".join(failures[:20])
