"""Each test names what it kills and what it asserts. Jobs must never stay `running` after
their worker is gone, never train twice, never be lost, and never be retried forever.
(Cancelling queued and running jobs is covered over the same real services in
tests/integration/test_service_flow.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tass.core.queue import TRAIN_TASK, make_producer
from tass.core.settings import Settings
from tests.faults.conftest import (
    DATA,
    FINAL,
    SLOW,
    child_pid,
    epoch_rows,
    kill9,
    submit,
    wait_until,
)

pytestmark = pytest.mark.integration


def wait_ready(worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "ready." not in worker.log_tail(200000):
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"{worker.name} never became ready"
        time.sleep(0.2)


def mid_epoch(epoch: int):
    def check(job: dict) -> bool:
        progress = job["progress"] or {}
        return (
            job["status"] == "running"
            and (progress.get("epoch") or 0) >= epoch  # null while loading and compiling
            and (progress.get("step") or 0) < (progress.get("steps_per_epoch") or 0)
        )

    return check


def statuses(job: dict) -> list[str]:
    return [t["status"] for t in job["transitions"]]


def test_kill9_child_mid_epoch_resumes_at_the_next_epoch(http, api, workers):
    """Kills: the worker child, mid-epoch 2 (after checkpoint 1). Asserts: reaped, attempt 2
    resumes from epoch 1's checkpoint, succeeds, one metric row per epoch."""
    worker = workers()
    job_id = submit(http, epochs=4)
    job = wait_until(http, job_id, mid_epoch(2), 120, worker, what="mid-epoch 2")
    resumed_from = job["progress"]["epoch"] - 1
    kill9(child_pid(job))

    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, worker, what="final")
    assert done["status"] == "succeeded", done["error"]
    assert done["attempt"] == 2
    assert statuses(done) == ["queued", "running", "queued", "running", "succeeded"]
    assert done["transitions"][2]["reason"] == "worker lost (no heartbeat)"
    assert done["transitions"][3]["resumed_from_epoch"] == resumed_from
    assert epoch_rows(http, job_id) == [1, 2, 3, 4]


def test_kill9_whole_worker_then_a_new_worker_finishes_the_job(http, api, workers):
    """Kills: the whole first worker (main process and child). Asserts: the job does not stay
    running past the heartbeat timeout; the new worker completes it."""
    first = workers("first")
    job_id = submit(http, epochs=3)
    wait_until(http, job_id, mid_epoch(1), 120, first, what="running")
    os.killpg(first.proc.pid, signal.SIGKILL)

    second = workers("second")
    requeued = wait_until(
        http,
        job_id,
        lambda j: j["attempt"] == 2,
        60,
        second,
        what="requeued by the new worker's reaper",
    )
    assert requeued["status"] in {"queued", "running", "succeeded"}
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, second, what="final")
    assert done["status"] == "succeeded", done["error"]
    assert done["worker"].startswith("second")


def test_killed_before_its_first_heartbeat_is_still_reaped(http, api, workers):
    """Kills: the whole worker right after it claims the job, before any heartbeat
    (heartbeats every 30 s there). Asserts: reaped from its claim time, finished elsewhere."""
    silent = workers("silent", TASS_HEARTBEAT_SECONDS="30")
    job_id = submit(http, epochs=1)
    wait_until(http, job_id, lambda j: j["status"] == "running", 120, silent, what="claimed")
    os.killpg(silent.proc.pid, signal.SIGKILL)

    rescuer = workers("rescuer")
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, rescuer, what="final")
    assert done["status"] == "succeeded", done["error"]
    assert done["attempt"] == 2


def test_a_redelivered_message_does_not_train_twice(http, api, workers, fault_env):
    """Injects: a second delivery of the task for a job that is running under a live lease,
    consumed by another worker. Asserts: that delivery is skipped; one run, one attempt."""
    busy = workers("busy")
    job_id = submit(http, epochs=2)
    wait_until(http, job_id, mid_epoch(1), 120, busy, what="running")
    idle = workers("idle")
    wait_ready(idle)
    producer = make_producer(Settings(broker_url=fault_env["TASS_BROKER_URL"]))
    producer.send_task(TRAIN_TASK, args=[job_id], queue="train")

    deadline = time.monotonic() + 60
    while f"job {job_id} is not queued any more" not in idle.log_tail(200000):
        assert time.monotonic() < deadline, idle.log_tail()
        time.sleep(0.2)
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, busy, what="final")
    assert done["status"] == "succeeded"
    assert statuses(done) == ["queued", "running", "succeeded"] and done["attempt"] == 1
    assert done["worker"].startswith("busy")


def test_redis_restart_mid_job(http, api, workers, fault_redis):
    """Kills: Redis (restarted empty) while a job trains. Asserts: the job finishes; a job
    submitted afterwards is consumed and finishes."""
    worker = workers()
    job_id = submit(http, epochs=3)
    wait_until(http, job_id, mid_epoch(1), 120, worker, what="running")
    fault_redis.restart()

    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, worker, what="final")
    assert done["status"] == "succeeded", done["error"]
    later = submit(http, epochs=1)
    started = wait_until(
        http, later, lambda j: j["status"] != "queued", 60, worker, what="consumed within 60 s"
    )
    assert started["status"] in {"running", "succeeded"}
    finished = wait_until(http, later, lambda j: j["status"] in FINAL, 180, worker, what="final")
    assert finished["status"] == "succeeded", finished["error"]


def test_a_job_that_waited_while_redis_lost_everything_still_runs(http, api, workers, fault_redis):
    """Kills: Redis (restarted empty) while a job waits and no worker runs. Asserts: a worker
    that starts later runs the job (jobs wait in the database, not in the broker: the
    scheduler places it once a worker is alive)."""
    job_id = submit(http, epochs=1)
    fault_redis.restart()
    worker = workers()
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, worker, what="final")
    assert done["status"] == "succeeded", done["error"]
    assert done["placement"]["worker"] == done["worker"].rsplit("/", 1)[0]


def test_postgres_restart_gives_503_then_recovers_with_nothing_half_written(http, api, fault_pg):
    """Kills: PostgreSQL (fast shutdown, then start). Asserts: the API answers 503, not 500,
    while it is down, a submission then leaves nothing behind, and it answers 200 again."""
    before = http.get("/v1/jobs", params={"limit": 200}).json()["items"]
    fault_pg.stop()
    try:
        assert http.get("/v1/jobs").status_code == 503
        assert http.get("/readyz").status_code == 503
        refused = http.post("/v1/jobs", json={"type": "train", "spec": SLOW, "dataset": DATA})
        assert refused.status_code == 503
    finally:
        fault_pg.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if http.get("/v1/jobs").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(0.5)
    after = http.get("/v1/jobs", params={"limit": 200}).json()["items"]
    assert [j["id"] for j in after] == [j["id"] for j in before]
    assert http.get("/readyz").status_code == 200


def test_deadline_exceeded_fails_with_reason_timeout(http, api, workers):
    """Injects: a 10 s max runtime on a long job. Asserts: failed with reason `timeout`, and
    no more metrics after that."""
    worker = workers()
    job_id = submit(http, epochs=100, max_runtime_seconds=10)
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 120, worker, what="final")
    assert done["status"] == "failed"
    assert done["transitions"][-1]["reason"] == "timeout"
    assert "timeout" in done["error"]
    rows = epoch_rows(http, job_id)
    time.sleep(2)
    assert epoch_rows(http, job_id) == rows


def test_a_job_whose_process_dies_every_attempt_fails_after_max_attempts(http, api, workers):
    """Kills: the worker child on every attempt (max_attempts 2). Asserts: failed with a clear
    reason after attempt 2, and never requeued again."""
    worker = workers(TASS_MAX_ATTEMPTS="2")
    job_id = submit(http, epochs=5)
    for attempt in (1, 2):
        job = wait_until(
            http,
            job_id,
            lambda j, a=attempt: (
                j["status"] == "running" and j["attempt"] == a and j["progress"] is not None
            ),
            120,
            worker,
            what=f"attempt {attempt} running",
        )
        kill9(child_pid(job))
    done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 60, worker, what="final")
    assert done["status"] == "failed"
    assert done["attempt"] == 2
    assert done["transitions"][-1]["reason"] == "worker lost on every attempt"
    time.sleep(3)
    assert http.get(f"/v1/jobs/{job_id}").json()["transitions"] == done["transitions"]


def test_sigterm_mid_epoch_checkpoints_and_the_job_resumes_there_on_another_worker(
    http, api, workers
):
    """Sends: SIGTERM to a worker mid-epoch 1, with a 10 s grace period (then SIGKILL, as
    Kubernetes would). Asserts: the worker checkpoints at the step it reached and exits within
    the grace; the job is `preempted`, not failed, and goes back to the queue on the same
    attempt; another worker resumes it from that step (`resumed_from_step`); its final metrics
    are bitwise those of an uninterrupted run of the same spec."""
    body = {
        "type": "train",
        # deterministic kernels: bitwise equal across processes, not only within one
        "spec": {**SLOW, "epochs": 2, "deterministic": True},
        "dataset": {**DATA, "num_examples": 8000},  # 225 steps an epoch: time to interrupt
    }
    leaving = workers("leaving")
    wait_ready(leaving)
    job_id = http.post("/v1/jobs", json=body).json()["id"]
    wait_until(http, job_id, lambda j: j["status"] == "running", 60, leaving, what="claimed")
    staying = workers("staying")  # starts while the first one trains; takes the job back later

    def early_in_epoch_1(job: dict) -> bool:
        progress = job["progress"] or {}
        return job["status"] == "running" and 3 <= (progress.get("global_step") or 0) < 150

    job = wait_until(http, job_id, early_in_epoch_1, 120, leaving, what="early in epoch 1")
    os.kill(leaving.proc.pid, signal.SIGTERM)
    reached = job["progress"]["global_step"]
    steps_per_epoch = job["progress"]["steps_per_epoch"]
    try:
        leaving.proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(leaving.proc.pid, signal.SIGKILL)
        pytest.fail(f"the worker outlived its 10 s grace period:\n{leaving.log_tail()}")

    done = wait_until(
        http, job_id, lambda j: j["status"] in FINAL, 180, leaving, staying, what="final"
    )
    assert done["status"] == "succeeded", done["error"]
    assert done["attempt"] == 1  # a preemption is not a failed attempt
    assert statuses(done) == ["queued", "running", "preempted", "queued", "running", "succeeded"]
    preempted, requeued, resumed = done["transitions"][2:5]
    step = preempted["details"]["step"]
    assert reached <= step < steps_per_epoch  # mid-epoch 1, where the worker had got to
    assert preempted["reason"] == "worker told to stop" and requeued["reason"] == "preempted"
    assert resumed["resumed_from_step"] == resumed["details"]["resumed_from_step"] == step
    assert done["worker"].startswith("staying")
    assert epoch_rows(http, job_id) == [1, 2]

    reference = http.post("/v1/jobs", json=body).json()["id"]
    uninterrupted = wait_until(
        http, reference, lambda j: j["status"] in FINAL, 180, staying, what="reference final"
    )
    assert uninterrupted["status"] == "succeeded", uninterrupted["error"]
    learned = ("loss", "accuracy", "val_loss", "val_accuracy", "val_accuracy_flip")
    final, expected = done["result"]["final"], uninterrupted["result"]["final"]
    assert {k: final[k] for k in learned} == {k: expected[k] for k in learned}


def test_concurrent_posts_with_one_idempotency_key_make_one_job(http, api):
    """Injects: 10 concurrent identical POSTs with one Idempotency-Key. Asserts: one job; the
    same key with another body is 409."""
    body = {"type": "train", "spec": {**SLOW, "epochs": 1}, "dataset": DATA}
    headers = {"Idempotency-Key": f"concurrent-{time.time()}"}
    with ThreadPoolExecutor(10) as pool:
        responses = list(
            pool.map(lambda _: http.post("/v1/jobs", json=body, headers=headers), range(10))
        )
    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    conflict = http.post("/v1/jobs", json={**body, "name": "other"}, headers=headers)
    assert conflict.status_code == 409
    http.post(f"/v1/jobs/{ids.pop()}/cancel")
