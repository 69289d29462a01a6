"""Reading, listing and cancelling jobs; metric history and the event stream."""

from __future__ import annotations

import json

from tass.contract.statuses import JobStatus
from tass.core.job_results import upsert_metrics
from tass.core.job_transitions import transition

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def submit(client, **extra) -> dict:
    response = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC, **extra})
    assert response.status_code == 202, response.text
    return response.json()


def test_unknown_job_is_404_everywhere(client):
    for method, path in [
        ("get", "/v1/jobs/nope"),
        ("post", "/v1/jobs/nope/cancel"),
        ("get", "/v1/jobs/nope/metrics"),
        ("get", "/v1/jobs/nope/events"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


def test_list_is_newest_first_with_cursor_pages_and_filters(client, db):
    ids = [submit(client, name=f"job-{i}")["id"] for i in range(5)]
    with db() as session:
        transition(session, ids[1], JobStatus.CANCELLED)
        session.commit()

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:5] == list(reversed(ids))

    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}).json()["items"]
    assert [job["id"] for job in cancelled] == [ids[1]]
    assert client.get("/v1/jobs", params={"type": "evaluate"}).json()["items"] == []


def test_list_rejects_bad_filters_cursor_and_page_size(client):
    assert client.get("/v1/jobs", params={"status": "sleeping"}).status_code == 422
    assert client.get("/v1/jobs", params={"cursor": "!!garbage"}).status_code == 422
    assert client.get("/v1/jobs", params={"limit": 100000}).status_code == 422


def test_cancel_queued_job_is_final_and_recorded(client):
    job = submit(client)
    response = client.post(f"/v1/jobs/{job['id']}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert [t["status"] for t in response.json()["transitions"]] == ["queued", "cancelled"]
    again = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


def test_cancel_running_job_moves_it_to_cancelling(client, db):
    job = submit(client)
    with db() as session:
        assert transition(session, job["id"], JobStatus.RUNNING)
        session.commit()
    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.json()["status"] == "cancelling"
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202


def test_final_states_never_change(db, client):
    job = submit(client)
    with db() as session:
        assert transition(session, job["id"], JobStatus.RUNNING)
        assert transition(session, job["id"], JobStatus.SUCCEEDED)
        for target in JobStatus:
            assert not transition(session, job["id"], target)
        session.commit()
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"


def test_metric_history_groups_pages_and_downsamples(client, db):
    job = submit(client)
    with db() as session:
        for epoch in range(1, 6):
            upsert_metrics(
                session,
                job["id"],
                "epoch",
                epoch,
                {"loss": 1.0 / epoch, "val_accuracy": 0.1 * epoch},
            )
        # a retried write of epoch 3 overwrites instead of adding a row
        upsert_metrics(session, job["id"], "epoch", 3, {"loss": 0.3})
        session.commit()

    url = f"/v1/jobs/{job['id']}/metrics"
    page = client.get(url, params={"limit": 2}).json()
    assert [row["step"] for row in page["items"]] == [1, 2]
    rest = client.get(url, params={"cursor": page["next_cursor"]}).json()
    assert [row["step"] for row in rest["items"]] == [3, 4, 5]
    assert rest["items"][0]["values"] == {"loss": 0.3, "val_accuracy": 0.30000000000000004}
    assert rest["next_cursor"] is None
    sampled = client.get(url, params={"every": 2}).json()
    assert [row["step"] for row in sampled["items"]] == [2, 4]
    assert client.get(url, params={"kind": "step"}).json()["items"] == []


def test_event_stream_reports_metrics_and_ends_with_the_terminal_status(client, db):
    job = submit(client)
    with db() as session:
        transition(session, job["id"], JobStatus.RUNNING)
        upsert_metrics(session, job["id"], "epoch", 1, {"loss": 0.5})
        transition(session, job["id"], JobStatus.SUCCEEDED)
        session.commit()

    with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events, name = [], None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    assert events[0] == ("metrics", {"kind": "epoch", "step": 1, "values": {"loss": 0.5}})
    assert events[-1][0] == "status" and events[-1][1]["status"] == "succeeded"
