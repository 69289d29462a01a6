"""The data the dashboard reads: tag filters, job artifacts, workers and queues, cookie login."""

from __future__ import annotations

from datetime import timedelta

from tass.core.models import Artifact, Job, Worker, utcnow
from tass.core.workers import WorkerInfo, report_alive

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def test_jobs_filter_by_tag(client):
    a = client.post(
        "/v1/jobs",
        json={"type": "train", "dataset": SYNTHETIC, "tags": {"team": "vision", "run": "1"}},
    ).json()
    client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC, "tags": {"team": "nlp"}})
    found = client.get("/v1/jobs", params={"tag": "team=vision"}).json()["items"]
    assert [job["id"] for job in found] == [a["id"]]
    assert client.get("/v1/jobs", params={"tag": "team=none"}).json()["items"] == []
    assert client.get("/v1/jobs", params={"tag": "no-equals-sign"}).status_code == 422


def test_job_artifacts_list_checkpoints_with_digests(client, db):
    job = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()
    with db() as session:
        session.add(
            Artifact(
                job_id=job["id"],
                kind="checkpoint",
                key=f"{job['id']}/e1",
                size=10,
                sha256="ab" * 32,
                epoch=1,
            )
        )
        session.commit()
    rows = client.get(f"/v1/jobs/{job['id']}/artifacts").json()
    assert [(r["kind"], r["epoch"], r["size"], r["sha256"]) for r in rows] == [
        ("checkpoint", 1, 10, "ab" * 32)
    ]


def test_workers_show_liveness_current_jobs_and_queue_lengths(client, db):
    queued = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()
    running = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()
    with db() as session:
        report_alive(
            session, WorkerInfo("w1@host", "host", 1, ["evaluate", "train"], "gpu", ["GPU 0: H100"])
        )
        report_alive(session, WorkerInfo("w2@host", "host", 2, ["train"], "cpu", []))
        job = session.get(Job, running["id"])
        job.status, job.worker_id = "running", "w1@host/123"
        session.get(Worker, "w2@host").last_seen_at = utcnow() - timedelta(hours=1)
        session.commit()

    body = client.get("/v1/workers").json()
    by_name = {w["name"]: w for w in body["workers"]}
    assert by_name["w1@host"]["alive"] and by_name["w1@host"]["device"] == "gpu"
    assert by_name["w1@host"]["current_jobs"] == [running["id"]]
    assert not by_name["w2@host"]["alive"]
    assert {q["name"]: q["queued"] for q in body["queues"]}["train"] == 1, queued["id"]


def test_session_cookie_from_the_login_form_is_accepted_like_a_bearer_key(anonymous, keys):
    login = anonymous.post(
        "/dashboard/login", data={"api_key": keys["acme"]}, headers={"Origin": "http://testserver"}
    )
    assert login.status_code == 200  # followed the redirect to the jobs page
    assert anonymous.get("/v1/jobs").status_code == 200
    anonymous.cookies.set("tass_session", keys["acme"])  # the key itself is no session
    assert anonymous.get("/v1/jobs").status_code == 401
