"""The scheduler with real processes (PostgreSQL, Redis, Celery workers with two slots each):
a tenant behind another's backlog starts at the first free slot, and an urgent job preempts a
low one, which checkpoints, resumes where it stopped and ends bitwise equal to an
uninterrupted run."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import request_cancel
from tass.core.models import Job, TenantSettings
from tass.core.scheduling import Priority
from tests.faults.conftest import DATA, FINAL, SLOW, wait_until
from tests.support.seed import new_api_key


def cancel_leftovers(database_url: str) -> None:
    """Jobs earlier fault tests left queued would compete for these tests' slots."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            for job_id in session.scalars(select(Job.id).where(Job.status == "queued")):
                request_cancel(session, job_id)
    finally:
        engine.dispose()


def allow_urgent(database_url: str, tenant: str) -> None:
    """What `PUT /v1/tenants/{tenant}` with max_priority=urgent stores."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            session.merge(TenantSettings(name=tenant, max_priority=int(Priority.URGENT)))
    finally:
        engine.dispose()


def started_at(job: dict) -> datetime:
    running = [t for t in job["transitions"] if t["status"] == "running"]
    return datetime.fromisoformat(running[0]["at"])


@pytest.fixture
def other_tenant(api, fault_env) -> httpx.Client:
    key = new_api_key(fault_env["TASS_DATABASE_URL"], "team-b")
    with httpx.Client(
        base_url=api[1], timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        yield client


def submit(client: httpx.Client, **fields: object) -> str:
    body = {"type": "train", "spec": {**SLOW, "epochs": 1}, "dataset": DATA, **fields}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_tenant_behind_another_tenants_backlog_starts_at_the_first_free_slot(
    http, api, workers, fault_env, other_tenant
):
    cancel_leftovers(fault_env["TASS_DATABASE_URL"])
    nodes = [workers("fair", TASS_WORKER_SLOTS="2") for _ in range(2)]
    a_jobs = [submit(http) for _ in range(8)]
    b_job = submit(other_tenant)
    queued = other_tenant.get(f"/v1/jobs/{b_job}").json()
    assert queued["priority"] == "normal" and queued["resources"]["gpus"] == 0

    owners = {**{job_id: http for job_id in a_jobs}, b_job: other_tenant}
    done = {
        job_id: wait_until(
            client, job_id, lambda j: j["status"] in FINAL, 300, *nodes, what="final"
        )
        for job_id, client in owners.items()
    }
    assert all(job["status"] == "succeeded" for job in done.values())
    order = sorted(done, key=lambda job_id: started_at(done[job_id]))
    # four slots take four of a's jobs; the first slot that frees goes to b, not to a's fifth
    # (it starts once that slot's new job process is up: allow one of a's to start first on
    # the other node), never after all of a's
    assert order.index(b_job) <= 5, [done[j]["transitions"] for j in order]
    assert len({done[j]["placement"]["worker"] for j in a_jobs}) == 2, "both nodes took work"


def test_an_urgent_job_preempts_a_low_one_which_resumes_and_ends_bitwise_equal(
    http, api, workers, fault_env, other_tenant
):
    cancel_leftovers(fault_env["TASS_DATABASE_URL"])
    allow_urgent(fault_env["TASS_DATABASE_URL"], "team-b")
    node = workers("one-slot", TASS_WORKER_SLOTS="1")
    low_body = {
        "spec": {**SLOW, "epochs": 2, "deterministic": True},
        "dataset": {**DATA, "num_examples": 8000},  # 225 steps an epoch: time to preempt
    }
    low = submit(http, priority="low", **low_body)

    def mid_epoch_1(job: dict) -> bool:
        return job["status"] == "running" and ((job["progress"] or {}).get("global_step") or 0) >= 3

    wait_until(http, low, mid_epoch_1, 120, node, what="low job training")
    urgent = submit(other_tenant, priority="urgent")
    urgent_done = wait_until(
        other_tenant, urgent, lambda j: j["status"] in FINAL, 240, node, what="urgent final"
    )
    assert urgent_done["status"] == "succeeded", urgent_done["error"]

    low_done = wait_until(http, low, lambda j: j["status"] in FINAL, 300, node, what="low final")
    assert low_done["status"] == "succeeded", low_done["error"]
    assert low_done["attempt"] == 1, "a preemption is not a failed attempt"
    statuses = [t["status"] for t in low_done["transitions"]]
    assert statuses == ["queued", "running", "preempted", "queued", "running", "succeeded"]
    preempted, _, resumed = low_done["transitions"][2:5]
    assert resumed["details"]["resumed_from_step"] == preempted["details"]["step"]
    assert started_at(urgent_done) < datetime.fromisoformat(resumed["at"])

    reference = submit(http, priority="low", **low_body)
    uninterrupted = wait_until(
        http, reference, lambda j: j["status"] in FINAL, 300, node, what="reference final"
    )
    learned = ("loss", "accuracy", "val_loss", "val_accuracy")
    final, expected = low_done["result"]["final"], uninterrupted["result"]["final"]
    assert {k: final[k] for k in learned} == {k: expected[k] for k in learned}
