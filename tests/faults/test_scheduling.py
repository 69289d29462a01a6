"""The scheduler with real processes (PostgreSQL, Redis, Celery workers with two slots each):
a tenant behind another's backlog starts at the first free slot; an urgent job preempts a
low one, which checkpoints, resumes where it stopped and ends bitwise equal to an
uninterrupted run; killing the node that schedules moves scheduling to another within the
lease, places nothing twice, and gives the dead node's devices and jobs back."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import select

from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import request_cancel
from tass.core.models import Job, TenantSettings
from tass.core.scheduler_store import lease_holder
from tass.core.scheduling import Priority
from tests.faults.conftest import DATA, FINAL, SLOW, wait_until
from tests.support.processes import Service
from tests.support.seed import new_api_key

T = TypeVar("T")


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


def current_lease_holder(database_url: str) -> str | None:
    """Who holds a live scheduler lease (`<node>/<pid>`), as the scheduler_lease row says."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return lease_holder(session)
    finally:
        engine.dispose()


def poll(found: Callable[[], T | None], timeout: float, *services: Service, what: str) -> T:
    """What `found` returns first that is not None (or False), polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    logs = "\n".join(f"--- {s.name}\n{s.log_tail(6000)}" for s in services)
    raise AssertionError(f"{what} not reached within {timeout} s\n{logs}")


def pool_workers(client: httpx.Client) -> dict[str, dict]:
    return {w["name"]: w for p in client.get("/v1/pools").json()["pools"] for w in p["workers"]}


def placements_logged(*nodes: Service) -> Counter[str]:
    """How many times each job was sent to a worker, from the schedulers' logs."""
    sent = re.compile(r"job ([0-9a-f]{32}) placed on ")
    return Counter(m.group(1) for node in nodes for m in sent.finditer(node.log_tail(10**7)))


def placement_times(database_url: str, job_ids: list[str]) -> dict[str, datetime]:
    """When the scheduler placed each job (stored with the placement; the API shows where,
    not when)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Job.id, Job.placement).where(Job.id.in_(job_ids)))
            return {job_id: datetime.fromisoformat(placement["at"]) for job_id, placement in rows}
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


@pytest.mark.timeout(420)
def test_a_tenant_behind_another_tenants_backlog_starts_at_the_first_free_slot(
    http, api, workers, fault_env, other_tenant
):
    """A submits 20 jobs, then B one: B's starts at the first slot that frees, not after all
    of A's (A's jobs that have not started once B's has are cancelled: the order is known
    by then, and running them all would only lengthen the test)."""
    cancel_leftovers(fault_env["TASS_DATABASE_URL"])
    nodes = [workers("fair", TASS_WORKER_SLOTS="2") for _ in range(2)]
    poll(lambda: len(pool_workers(http)) == 2, 90, *nodes, what="both nodes alive")
    a_jobs = [submit(http) for _ in range(20)]
    b_job = submit(other_tenant)
    queued = other_tenant.get(f"/v1/jobs/{b_job}").json()
    assert queued["priority"] == "normal" and queued["resources"]["gpus"] == 0

    wait_until(
        other_tenant, b_job, lambda j: j["status"] != "queued", 300, *nodes, what="b started"
    )
    for job_id in a_jobs:  # a waiting job is cancelled at once; a placed one is left to run
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "queued" and job["placement"] is None:
            assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 202

    owners = {**{job_id: http for job_id in a_jobs}, b_job: other_tenant}
    done = {
        job_id: wait_until(
            client, job_id, lambda j: j["status"] in FINAL, 300, *nodes, what="final"
        )
        for job_id, client in owners.items()
    }
    started = [job_id for job_id, job in done.items() if job["status"] != "cancelled"]
    assert all(done[job_id]["status"] == "succeeded" for job_id in started)
    # in the order the scheduler placed them (when each job's process then starts running
    # depends on the node's load): four slots take four of a's jobs; the first slot that frees
    # goes to b, not to a's fifth (two slots freeing in one cycle: one may go to a), never
    # after all of a's
    placed = placement_times(fault_env["TASS_DATABASE_URL"], started)
    order = sorted(started, key=placed.__getitem__)
    assert order.index(b_job) <= 5, [(j == b_job, done[j]["placement"]) for j in order]
    assert len(started) <= 8, "most of a's jobs were still waiting when b's started"
    assert len({done[j]["placement"]["worker"] for j in started if j != b_job}) == 2


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


LEASE_SECONDS = 2.0
TAKEOVER_MARGIN = 3.0
"""Beyond the lease: a scheduling cycle (0.25 s), the database round trips, a loaded machine."""


def placed_on(prefix: str) -> Callable[[dict], bool]:
    return lambda job: (job["placement"] or {}).get("worker", "").startswith(prefix)


@pytest.mark.timeout(420)
def test_killing_the_scheduling_node_moves_scheduling_to_another_and_gives_its_devices_back(
    http, api, workers, fault_env
):
    """Kills: the whole node holding the scheduler lease (main process and the job processes of
    the two jobs it runs). Asserts: the other node takes the lease and places jobs submitted
    after the kill within the lease time plus a margin; /v1/pools stops counting the dead
    node's devices; its jobs are requeued once and finish on the survivor; every attempt was
    placed once and ran once."""
    database = fault_env["TASS_DATABASE_URL"]
    cancel_leftovers(database)
    node_env = {"TASS_WORKER_SLOTS": "2", "TASS_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS)}
    leader = workers("leader", **node_env)
    poll(
        lambda: (current_lease_holder(database) or "").startswith("leader"),
        90,
        leader,
        what="the first node holding the lease",
    )
    doomed = [submit(http, spec={**SLOW, "epochs": 2}) for _ in range(2)]
    for job_id in doomed:  # placed on the only node, before the second one is up
        wait_until(http, job_id, placed_on("leader"), 30, leader, what="placed on the leader")
    survivor = workers("survivor", **node_env)
    poll(lambda: len(pool_workers(http)) == 2, 90, survivor, what="both nodes alive")
    for job_id in doomed:
        wait_until(http, job_id, lambda j: j["status"] == "running", 120, leader, what="running")

    os.killpg(leader.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    fresh = [submit(http, dataset={**DATA, "num_examples": 200}) for _ in range(2)]
    bound = LEASE_SECONDS + TAKEOVER_MARGIN

    def successor() -> str | None:
        holder = current_lease_holder(database)
        return None if holder is None or holder.startswith("leader") else holder

    holder = poll(successor, bound, survivor, what="the lease taken over")
    assert holder.startswith("survivor"), holder
    survivor_node = holder.rsplit("/", 1)[0]
    for job_id in fresh:
        left = max(killed + bound - time.monotonic(), 0.5)
        wait_until(http, job_id, placed_on("survivor"), left, survivor, what="placed in bound")
    heartbeat_timeout = float(fault_env["TASS_HEARTBEAT_TIMEOUT_SECONDS"])
    poll(
        lambda: list(pool_workers(http)) == [survivor_node],
        heartbeat_timeout + TAKEOVER_MARGIN,
        survivor,
        what="the dead node gone from /v1/pools",
    )
    (pool,) = http.get("/v1/pools").json()["pools"]
    assert pool["devices"] == 2 and pool["used"] == len(pool["workers"][0]["running_jobs"])

    done = {
        job_id: wait_until(
            http, job_id, lambda j: j["status"] in FINAL, 300, survivor, what="final"
        )
        for job_id in [*doomed, *fresh]
    }
    assert all(job["status"] == "succeeded" for job in done.values()), done
    for job_id in fresh:
        assert [t["status"] for t in done[job_id]["transitions"]] == [
            "queued",
            "running",
            "succeeded",
        ]
    for job_id in doomed:
        job = done[job_id]
        assert [t["status"] for t in job["transitions"]] == [
            "queued",
            "running",
            "queued",
            "running",
            "succeeded",
        ]
        assert (
            job["attempt"] == 2 and job["transitions"][2]["reason"] == "worker lost (no heartbeat)"
        )
        assert job["worker"].startswith("survivor")
    sent = placements_logged(leader, survivor)
    assert {job_id: sent[job_id] for job_id in done} == {
        **{job_id: 2 for job_id in doomed},  # once per attempt: by the leader, by the survivor
        **{job_id: 1 for job_id in fresh},
    }
