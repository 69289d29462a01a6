"""A worker that is paused, not dead: SIGSTOP the training child past its lease, let the retry
resume and publish on another worker, then SIGCONT the old child. Nothing it does afterwards
may change a stored artifact, and the published model must still evaluate."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from tass.core.db import make_engine, make_session_factory
from tass.core.job_queries import job_artifacts
from tass.core.objectstore import ObjectStore
from tass.core.retention import collect_garbage
from tests.faults.conftest import FINAL, child_pid, submit, wait_until
from tests.faults.test_faults import mid_epoch, wait_ready

pytestmark = pytest.mark.integration


def stored_digest(store: ObjectStore, key: str) -> str:
    """The sha256 of the bytes the store holds at `key`, read behind the service's back."""
    return hashlib.sha256(b"".join(store.iter_range(key))).hexdigest()


def test_a_paused_attempt_that_wakes_after_the_retry_published_changes_nothing(
    http, api, workers, fault_env
):
    pause_a_worker_past_its_lease_then_wake_it(http, workers, fault_env)


def pause_a_worker_past_its_lease_then_wake_it(http, workers, fault_env) -> None:
    """The scenario, over whichever database and store `fault_env` names."""
    both = [workers("one"), workers("two")]
    for worker in both:
        wait_ready(worker)
    job_id = submit(http, epochs=5)
    job = wait_until(http, job_id, mid_epoch(2), 120, *both, what="mid-epoch 2")
    stale_pid = child_pid(job)
    os.kill(stale_pid, signal.SIGSTOP)  # at once: the job must still be mid-training
    paused = next(w for w in both if job["worker"].startswith(f"{w.name}@"))
    try:
        done = wait_until(http, job_id, lambda j: j["status"] in FINAL, 180, *both, what="final")
    finally:
        os.kill(stale_pid, signal.SIGCONT)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempt"] == 2 and not done["worker"].startswith(f"{paused.name}@")
    resumed = [t for t in done["transitions"] if t["status"] == "running"][-1]
    assert resumed["resumed_from_epoch"] >= 1  # the retry resumed from a recorded checkpoint

    # the old attempt runs on until it notices its lost lease; give it a few heartbeats
    deadline = time.monotonic() + 20
    while "lost its lease" not in paused.log_tail(200000) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)

    store = ObjectStore(fault_env["TASS_ARTIFACT_URL"])
    engine = make_engine(fault_env["TASS_DATABASE_URL"])
    factory = make_session_factory(engine)
    with factory() as session:
        artifacts = job_artifacts(session, job_id)
    # what the collector would remove of this job: only the stale attempt's unrecorded uploads
    garbage = collect_garbage(factory, store, "all", dry_run=True)
    engine.dispose()
    recorded = {a.key for a in artifacts}
    for item in garbage:
        if job_id in item.key:
            assert item.key not in recorded and "/attempt-1/" in item.key, item
    assert {a.kind for a in artifacts} >= {"checkpoint", "checkpoint-state", "model-keras"}
    for artifact in artifacts:
        assert stored_digest(store, artifact.key) == artifact.sha256, artifact.key
        if artifact.kind.startswith("model"):
            assert f"/attempt-{done['attempt']}/" in artifact.key

    download = http.get(f"/v1/models/{done['model_id']}/download", params={"format": "keras"})
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == download.headers["x-checksum-sha256"]

    evaluation = http.post(
        "/v1/jobs",
        json={
            "type": "evaluate",
            "model_id": done["model_id"],
            "dataset": {"source": "synthetic", "num_examples": 200},
        },
    )
    assert evaluation.status_code == 202, evaluation.text
    evaluated = wait_until(
        http, evaluation.json()["id"], lambda j: j["status"] in FINAL, 120, *both, what="evaluated"
    )
    assert evaluated["status"] == "succeeded", evaluated["error"]
    assert evaluated["result"]["num_examples"] == 200
