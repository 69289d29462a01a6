"""A sweep over real processes (uvicorn, Celery workers, Redis, PostgreSQL) that loses its
worker to kill -9 and its API to a restart half-way, and still ends with every trial run once
and its best trial: the decisions live in the jobs tables, not in any process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.faults.conftest import DATA, FINAL, SLOW, wait_until
from tests.support.processes import Service, start_api
from tests.support.seed import new_api_key

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SWEEP = {
    "name": "survivor",
    "spec": {**SLOW, "epochs": 2},
    "dataset": DATA,
    "method": "random",
    "parameters": {"dropout": {"values": [0.0, 0.1, 0.2]}},
    "objective": {"metric": "val_accuracy", "goal": "maximize"},
    "max_trials": 3,
    "max_parallel": 1,
}


def wait_for_sweep(client: httpx.Client, sweep_id: str, timeout: float, *services: Service) -> dict:
    deadline = time.monotonic() + timeout
    sweep: dict = {}
    while time.monotonic() < deadline:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] in FINAL:
            return sweep
        time.sleep(0.5)
    logs = "\n".join(f"--- {s.name}\n{s.log_tail(6000)}" for s in services)
    raise AssertionError(f"sweep {sweep_id} did not end: {sweep}\n{logs}")


def test_a_sweep_survives_a_worker_kill9_and_an_api_restart(
    fault_env: dict[str, str], logs, workers: Callable[..., Service]
):
    key = new_api_key(fault_env["TASS_DATABASE_URL"], "sweeper")
    headers = {"Authorization": f"Bearer {key}"}
    api, url = start_api(fault_env, logs)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            created = client.post("/v1/sweeps", json=SWEEP)
            assert created.status_code == 202, created.text
            sweep_id = created.json()["id"]
            first_trial = created.json()["trials"][0]["job_id"]
            first = workers("sweep-first")
            wait_until(
                client,
                first_trial,
                lambda j: (
                    j["status"] == "running" and ((j["progress"] or {}).get("epoch") or 0) >= 1
                ),
                180,
                first,
                what="training",
            )
        os.killpg(first.proc.pid, signal.SIGKILL)
        api.stop()
        api, url = start_api(fault_env, logs)
        second = workers("sweep-second")
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            sweep = wait_for_sweep(client, sweep_id, 420, api, second)
            jobs = client.get("/v1/jobs", params={"sweep": sweep_id}).json()["items"]
            resumed = client.get(f"/v1/jobs/{first_trial}").json()
    finally:
        api.stop()

    assert sweep["status"] == "succeeded", sweep
    assert [t["number"] for t in sweep["trials"]] == [0, 1, 2]
    assert {t["status"] for t in sweep["trials"]} == {"succeeded"}
    assert len(jobs) == 3, "every trial ran as exactly one job"
    assert resumed["attempt"] >= 2 and resumed["status"] == "succeeded"
    best = max(sweep["trials"], key=lambda t: t["final_value"])
    assert sweep["best"]["job_id"] == best["job_id"] and sweep["best"]["model_id"]
