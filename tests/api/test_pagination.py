"""One way to page: `limit` is bounded by the `max_page_size` setting on every listing (also
above 200, and on the datasets and webhooks lists), and a bad cursor is a 422 naming it."""

from __future__ import annotations

import pytest

from tass.core.job_lifecycle import create_job
from tass.core.models import UploadedDataset, Webhook


def add_jobs(db, count: int) -> None:
    with db() as session:
        for number in range(count):
            create_job(
                session,
                job_type="train",
                tenant="acme",
                queue="train",
                dataset={"source": "synthetic", "num_examples": 10},
                spec={"epochs": 1},
                name=f"job-{number}",
            )
        session.commit()


def test_max_page_size_above_200_is_honoured(client, db, settings):
    settings.max_page_size = 250
    add_jobs(db, 260)
    page = client.get("/v1/jobs", params={"limit": 250})
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 250 and page.json()["next_cursor"]
    rest = client.get("/v1/jobs", params={"limit": 250, "cursor": page.json()["next_cursor"]})
    assert len(rest.json()["items"]) == 10 and rest.json()["next_cursor"] is None


def test_a_limit_above_max_page_size_is_served_as_a_page_of_max_page_size(client, db, settings):
    settings.max_page_size = 3
    add_jobs(db, 5)
    for path in ("/v1/jobs", "/v1/sweeps", "/v1/models", "/v1/registry"):
        assert client.get(path, params={"limit": 200}).status_code == 200, path
    assert len(client.get("/v1/jobs", params={"limit": 200}).json()["items"]) == 3


def test_datasets_and_webhooks_lists_clamp_to_max_page_size(client, db, settings):
    with db() as session:
        for number in range(5):
            session.add(
                UploadedDataset(
                    tenant="acme",
                    name=f"set-{number}",
                    status="ready",
                    archive_format="zip",
                    key=f"datasets/{number}",
                    size=1,
                    sha256="0" * 64,
                )
            )
            session.add(
                Webhook(
                    tenant="acme",
                    url=f"http://127.0.0.1:9/{number}",
                    events=["job.failed"],
                    secret="whsec_test",
                )
            )
        session.commit()
    assert len(client.get("/v1/datasets").json()["items"]) == 5
    assert len(client.get("/v1/webhooks").json()["items"]) == 5
    settings.max_page_size = 3
    for path in ("/v1/datasets", "/v1/webhooks"):
        assert len(client.get(path).json()["items"]) == 3, path  # the default limit, clamped
        assert len(client.get(path, params={"limit": 200}).json()["items"]) == 3, path


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/sweeps", "/v1/models"])
def test_bad_cursor_and_limit_are_422_naming_the_parameter(client, path):
    bad_cursor = client.get(path, params={"cursor": "!!garbage"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"] == [
        {"loc": ["query", "cursor"], "msg": "cursor: cursor is not valid", "type": "value_error"}
    ]
    too_many = client.get(path, params={"limit": 100_000})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["query", "limit"]
