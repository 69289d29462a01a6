"""/metrics: parses as Prometheus text, counters move with jobs, access is restricted."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tass.contract.statuses import JobStatus
from tass.core.job_transitions import transition
from tass.core.models import utcnow
from tests.api.conftest import bearer

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def scrape(client, key: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=bearer(key))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_need_an_admin_key_off_the_allowed_networks(anonymous, keys):
    assert anonymous.get("/metrics").status_code == 401
    assert anonymous.get("/metrics", headers=bearer(keys["acme"])).status_code == 403
    assert anonymous.get("/metrics", headers=bearer(keys["admin"])).status_code == 200


def test_allowed_networks_scrape_without_a_key_and_wrong_keys_elsewhere_are_throttled(app, keys):
    local = TestClient(app, client=("127.0.0.1", 40000))
    assert local.get("/metrics").status_code == 200
    elsewhere = TestClient(app, client=("192.0.2.7", 40000))
    wrong = elsewhere.get("/metrics", headers=bearer("tass_nope"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    limit = int(app.state.settings.auth_failure_limit.split("/")[0])
    for _ in range(limit):
        elsewhere.get("/metrics", headers=bearer("tass_nope"))
    # past the limit even the right key waits: guesses cost time
    assert elsewhere.get("/metrics", headers=bearer(keys["admin"])).status_code == 429


def test_job_counters_and_gauges_move_as_a_job_runs(client, anonymous, keys, db):
    admin = keys["admin"]
    before = scrape(anonymous, admin)
    job = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()
    queued = scrape(anonymous, admin)
    submitted = ("tass_jobs_submitted_total", (("type", "train"),))
    assert queued[submitted] == before.get(submitted, 0) + 1
    depth = queued[("tass_queue_depth", (("queue", "train"),))]
    assert depth >= 1
    # the autoscaling signal: GPUs the waiting jobs of the pool (its queue) ask for
    demand = ("tass_gpu_demand_waiting", (("pool", "train"),))
    assert queued[demand] == depth == before.get(demand, 0) + 1

    with db() as session:
        transition(
            session,
            job["id"],
            JobStatus.RUNNING,
            values={"started_at": utcnow(), "progress": {"epoch": 3, "images_per_sec": 812.5}},
        )
        session.commit()
    running = scrape(anonymous, admin)
    assert running[demand] == queued[demand] - 1  # running: no longer waiting (0, not absent)
    assert running[("tass_training_epoch", (("job_id", job["id"]),))] == 3
    assert running[("tass_training_images_per_second", (("job_id", job["id"]),))] == 812.5

    with db() as session:
        transition(session, job["id"], JobStatus.QUEUED, values={"attempt": 2})
        transition(session, job["id"], JobStatus.RUNNING)
        transition(session, job["id"], JobStatus.SUCCEEDED)
        session.commit()
    done = scrape(anonymous, admin)
    finished = ("tass_jobs_finished_total", (("status", "succeeded"), ("type", "train")))
    assert done[finished] == before.get(finished, 0) + 1
    assert (
        done[("tass_reaper_requeues_total", ())]
        == before.get(("tass_reaper_requeues_total", ()), 0) + 1
    )
    count = ("tass_job_duration_seconds_count", (("type", "train"),))
    assert done[count] == before.get(count, 0) + 1


def test_http_requests_are_counted_by_route_template(client, anonymous, keys):
    client.get("/v1/jobs/does-not-exist")
    samples = scrape(anonymous, keys["admin"])
    key = (
        "tass_http_requests_total",
        (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404")),
    )
    assert samples[key] >= 1
