"""What the scheduler shows and what admins control over HTTP: the waiting queue in order with
reasons, each pool's capacity and use, tenants' settings, draining a worker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tass.core.models import Job, Worker, utcnow
from tass.core.workers import WorkerInfo, report_alive
from tass.worker.scheduler import Scheduler

from .conftest import RecordingSender, bearer

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


@pytest.fixture
def admin(app, keys) -> TestClient:
    return TestClient(app, headers=bearer(keys["admin"]))


@pytest.fixture
def globex(app, keys) -> TestClient:
    return TestClient(app, headers=bearer(keys["globex"]))


@pytest.fixture
def one_slot_cycle(db, settings) -> Callable[[], None]:
    """A live CPU worker `w1` with one slot in pool `default`, the only live one and with no
    job of another test waiting (rows another test committed to the run's PostgreSQL are put
    aside inside this test's transaction); calling runs one cycle."""
    with db.begin() as session:
        session.execute(
            update(Job)
            .where(Job.status.in_(["queued", "running", "cancelling"]))
            .values(status="cancelled", placement=None)
        )
        session.execute(update(Worker).values(stopped_at=utcnow()))
        report_alive(session, WorkerInfo("w1", "host", 1, [], "cpu", [], pool="default", slots=1))
    holder = "api-test-scheduler"  # drain_tasks's: a lease it left is this one's
    scheduler = Scheduler(RecordingSender(), db, settings, holder=holder)

    def cycle() -> None:
        scheduler.cycle()

    return cycle


def submit(client: TestClient, **fields: object) -> str:
    response = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC, **fields})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_queue_lists_waiting_jobs_in_scheduling_order_with_reasons(
    client, globex, admin, one_slot_cycle
):
    first = submit(client, name="first")
    second = submit(client, name="second", priority="low")
    other = submit(globex, priority="high")
    one_slot_cycle()  # the high job takes the slot; the others wait, ranked
    late = submit(client, name="late")  # not ranked yet: after every ranked job

    everyone = admin.get("/v1/queue").json()
    assert [j["id"] for j in everyone["items"]] == [first, second, late]
    assert other not in [j["id"] for j in everyone["items"]], "placed jobs do not wait"
    head = everyone["items"][0]
    assert head["queue_position"] == 1 and head["pending_reason"]
    assert head["tenant"] == "acme" and head["priority"] == "normal"
    assert head["resources"] == {"gpus": 0, "workers": 1, "pool": None}
    assert everyone["items"][1]["priority"] == "low"
    assert everyone["items"][2]["queue_position"] is None
    assert globex.get("/v1/queue").json()["items"] == [], "a tenant sees only its own"


def test_queue_pages_follow_the_cursor(client, one_slot_cycle):
    ids = [submit(client) for _ in range(4)]
    one_slot_cycle()
    page = client.get("/v1/queue", params={"limit": 2}).json()
    rest = client.get("/v1/queue", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in page["items"] + rest["items"]] == ids[1:]
    assert rest["next_cursor"] is None
    bad = client.get("/v1/queue", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_pools_show_devices_use_and_what_waits(client, globex, admin, one_slot_cycle):
    running = submit(client)
    submit(client)
    submit(client, resources={"gpus": 0, "pool": "a100"})  # no live worker there yet: waits
    one_slot_cycle()

    body = admin.get("/v1/pools").json()
    pools = {p["name"]: p for p in body["pools"]}
    default = pools["default"]
    assert (default["devices"], default["used"], default["free"]) == (1, 1, 0)
    assert default["workers"] == [
        {
            "name": "w1",
            "device": "cpu",
            "slots": 1,
            "free": 0,
            "used": 1,
            "draining": False,
            "running_jobs": [running],
        }
    ]
    assert pools["a100"] == {
        "name": "a100",
        "devices": 0,
        "free": 0,
        "used": 0,
        "waiting": 1,
        "workers": [],
    }
    assert body["waiting_any_pool"] == 1
    hidden = {p["name"]: p for p in globex.get("/v1/pools").json()["pools"]}
    assert hidden["default"]["workers"][0]["running_jobs"] == [], "another tenant's job"


def test_admin_sets_tenant_settings_and_they_take_effect_at_submit(client, admin):
    urgent = {"type": "train", "dataset": SYNTHETIC, "priority": "urgent"}
    assert client.post("/v1/jobs", json=urgent).status_code == 422, "default cap: high"

    put = admin.put(
        "/v1/tenants/acme",
        json={"weight": 2.5, "max_priority": "urgent", "gpu_quota": {"a100": 4}},
    )
    assert put.status_code == 200, put.text
    stored = {"name": "acme", "weight": 2.5, "max_priority": "urgent", "gpu_quota": {"a100": 4}}
    assert put.json() == stored
    assert client.get("/v1/tenants/acme").json() == stored
    assert client.post("/v1/jobs", json=urgent).status_code == 202

    partial = admin.put("/v1/tenants/acme", json={"weight": 1})
    assert partial.json() == {**stored, "weight": 1.0}, "fields left out keep their value"


def test_tenants_defaults_and_who_may_read_or_set_them(client, admin):
    assert admin.get("/v1/tenants/newteam").json() == {
        "name": "newteam",
        "weight": 1.0,
        "max_priority": "high",
        "gpu_quota": {},
    }
    assert client.get("/v1/tenants/globex").status_code == 404
    assert client.put("/v1/tenants/acme", json={"weight": 9}).status_code == 403
    assert admin.get("/v1/tenants/Not%20A%20Tenant").status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"weight": 0}, ["body", "weight"]),
        ({"weight": "heavy"}, ["body", "weight"]),
        ({"max_priority": "critical"}, ["body", "max_priority"]),
        ({"gpu_quota": {"a100": -1}}, ["body", "gpu_quota", "a100"]),
        ({"gpu_quota": {"bad pool": 1}}, ["body", "gpu_quota", "bad pool", "[key]"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
def test_tenant_settings_bad_fields_are_422_naming_the_field(admin, body, field):
    response = admin.put("/v1/tenants/acme", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == field


def test_workers_drain_stops_placements_and_undrain_resumes(client, admin, db, one_slot_cycle):
    assert client.post("/v1/workers/w1/drain").status_code == 403
    assert admin.post("/v1/workers/nobody/drain").status_code == 404
    drained = admin.post("/v1/workers/w1/drain")
    assert drained.json() == {"name": "w1", "draining": True, "preempted": []}
    listed = {w["name"]: w for w in admin.get("/v1/workers").json()["workers"]}["w1"]
    assert (listed["pool"], listed["slots"], listed["draining"]) == ("default", 1, True)

    job = submit(client)
    one_slot_cycle()
    assert client.get(f"/v1/jobs/{job}").json()["placement"] is None, "drained: no placement"
    assert admin.post("/v1/workers/w1/undrain").json()["draining"] is False
    one_slot_cycle()
    assert client.get(f"/v1/jobs/{job}").json()["placement"]["worker"] == "w1"


def test_workers_drain_with_preempt_asks_running_train_jobs_to_stop(
    client, admin, db, one_slot_cycle
):
    job = submit(client)
    one_slot_cycle()
    with db() as session:
        session.get(Job, job).status = "running"
        session.commit()
    drained = admin.post("/v1/workers/w1/drain", params={"preempt": "true"})
    assert drained.json()["preempted"] == [job]
    with db() as session:
        assert session.get(Job, job).preempt_requested_at is not None


# the same over the CLI


def test_cli_submit_with_scheduling_flags_then_queue_and_status_say_why_it_waits(
    tass_cli, client, one_slot_cycle
):
    submitted = tass_cli(
        "submit", "train", "--data", "synthetic:100", "--name", "big",
        "--priority", "low", "--gpus", "0", "--pool", "a100",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.split()[0]
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["priority"] == "low"
    assert job["resources"] == {"gpus": 0, "workers": 1, "pool": "a100"}
    one_slot_cycle()
    reason = client.get(f"/v1/jobs/{job_id}").json()["pending_reason"]
    assert reason

    queued = tass_cli("queue")
    assert queued.exit_code == 0, queued.output
    assert "big" in queued.stdout and "acme" in queued.stdout and "low" in queued.stdout
    assert "1 slot @a100" in queued.stdout
    status = tass_cli("status", job_id)
    assert "position 1" in status.stdout and "@a100" in status.stdout
    assert "waiting" in status.stdout
    assert tass_cli("queue", "--json").stdout.count(job_id) == 1


def test_cli_pools_show_workers_devices_and_waiting(tass_cli, client, one_slot_cycle):
    running = submit(client)
    submit(client)
    one_slot_cycle()
    shown = tass_cli("pools")
    assert shown.exit_code == 0, shown.output
    assert "default" in shown.stdout and "w1" in shown.stdout and running in shown.stdout
    assert "jobs waiting for any pool: 1" in shown.output


def test_cli_tenants_set_and_show_need_an_admin(tass_cli, keys, monkeypatch):
    refused = tass_cli("tenants", "set", "acme", "--weight", "3")
    assert refused.exit_code == 1 and "admin" in refused.output
    monkeypatch.setenv("TASS_API_KEY", keys["admin"])
    changed = tass_cli(
        "tenants", "set", "acme", "--weight", "3", "--max-priority", "urgent",
        "--gpu-quota", "a100=4", "--gpu-quota", "h100=0", "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout) == {
        "name": "acme",
        "weight": 3.0,
        "max_priority": "urgent",
        "gpu_quota": {"a100": 4, "h100": 0},
    }
    assert "a100=4 h100=0" in tass_cli("tenants", "show", "acme").stdout
    bad = tass_cli("tenants", "set", "acme", "--gpu-quota", "a100")
    assert bad.exit_code == 2 and "POOL=N" in bad.output
    wrong = tass_cli("tenants", "set", "acme", "--max-priority", "asap")
    assert wrong.exit_code == 1 and "max_priority" in wrong.output


def test_cli_workers_drain_and_undrain(tass_cli, keys, monkeypatch, client, db, one_slot_cycle):
    job = submit(client)
    one_slot_cycle()
    with db() as session:
        session.get(Job, job).status = "running"
        session.commit()
    monkeypatch.setenv("TASS_API_KEY", keys["admin"])
    drained = tass_cli("workers", "drain", "w1", "--preempt")
    assert drained.exit_code == 0, drained.output
    assert "draining" in drained.stdout and job in drained.stdout
    listed = tass_cli("workers", "list")
    assert "w1" in listed.stdout and "draining" in listed.stdout
    assert "taking jobs" in tass_cli("workers", "undrain", "w1").stdout
    unknown = tass_cli("workers", "drain", "nobody@host")
    assert unknown.exit_code == 1 and "no worker" in unknown.output
