"""Every command that puts an id in a URL escapes it: an id holding `/`, `?`, `#` or `..` reaches
the resource it names (and is answered 404 there), never another route."""

from __future__ import annotations

import pytest

from tass.client.api_client import TassClient
from tass.client.errors import ApiError, TassError

HOSTILE = "../x/y?z=1#f"
HOSTILE_PATH = "..%2Fx%2Fy%3Fz%3D1%23f"

# (command line with {id}, the request path it must send, with the id escaped as {esc})
COMMANDS = [
    ("webhooks deliveries {id}", "GET", "/v1/webhooks/{esc}/deliveries"),
    ("webhooks delete {id}", "DELETE", "/v1/webhooks/{esc}"),
    ("sweep status {id}", "GET", "/v1/sweeps/{esc}"),
    ("sweep best {id}", "GET", "/v1/sweeps/{esc}"),
    ("sweep cancel {id}", "POST", "/v1/sweeps/{esc}/cancel"),
    ("registry show {id}", "GET", "/v1/registry/{esc}"),
    ("registry register {id} m1", "POST", "/v1/registry/{esc}/versions"),
    ("registry alias cats {id} 2", "PUT", "/v1/registry/cats/aliases/{esc}"),
    ("registry alias cats {id} --delete", "DELETE", "/v1/registry/cats/aliases/{esc}"),
    ("registry delete-version {id} 3", "DELETE", "/v1/registry/{esc}/versions/3"),
    ("status {id}", "GET", "/v1/jobs/{esc}"),
    ("cancel {id}", "POST", "/v1/jobs/{esc}/cancel"),
    ("metrics {id}", "GET", "/v1/jobs/{esc}"),  # it checks the job first
    ("datasets show {id}", "GET", "/v1/datasets/{esc}"),
    ("datasets delete {id}", "DELETE", "/v1/datasets/{esc}"),
]


@pytest.mark.parametrize(("hostile", "escaped"), [(HOSTILE, HOSTILE_PATH), ("..", "%2E%2E")])
@pytest.mark.parametrize(("line", "method", "path"), COMMANDS)
def test_cli_escapes_ids_in_paths(run, api, line, method, path, hostile, escaped):
    args = [hostile if word == "{id}" else word for word in line.split()]
    run(*args)
    sent = [(r.method, r.url.raw_path.decode().split("?")[0]) for r in api.requests]
    assert sent, "no request sent"
    assert sent[0] == (method, path.format(esc=escaped))


def test_predict_escapes_the_model_id(run, api, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(b"png")
    run("predict", HOSTILE, str(image))
    sent = api.requests[0].url.raw_path.decode().split("?")[0]
    assert sent == f"/v1/models/{HOSTILE_PATH}/predict"


def test_client_escapes_dot_segments_and_refuses_empty_ids(api):
    with TassClient("http://tass.test", api_key="", transport=api.transport) as client:
        for call in (client.get_sweep, client.get_job, client.get_model, client.get_registered):
            with pytest.raises(TassError, match="empty"):
                call("")
        with pytest.raises(ApiError):  # the fake answers 404: the point is the path sent
            client.webhook_deliveries(".")
    assert api.requests[-1].url.raw_path.decode() == "/v1/webhooks/%2E/deliveries"
