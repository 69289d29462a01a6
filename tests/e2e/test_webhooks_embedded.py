"""Webhooks end to end on the embedded service (`tass up`): a tiny training job's events reach
a loopback receiver from the worker's delivery thread, signed (verified by the standardwebhooks
library), in order, retried after a 500 without holding the job; an event whose receiver keeps
failing is still delivered after the whole service is stopped and started again."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks import Webhook as Verifier

from tests.support.embedded import Embedded, start_embedded
from tests.support.processes import Service, free_port
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration

JOB = {
    "type": "train",
    "name": "hooked",
    # without XLA: it compiles ~8 s per job on 2 cores
    "spec": {
        "model": "alexnet-cifar",
        "width": 0.25,
        "batch_size": 64,
        "epochs": 1,
        "jit_compile": "off",
    },
    "dataset": {"source": "synthetic", "num_examples": 256},
}


def start(root, port: int) -> Embedded:
    return start_embedded(root, port, TASS_WEBHOOK_ALLOW_NETWORKS="127.0.0.1/32")


def wait_until(done, service: Service, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, service.log_tail()
        time.sleep(0.5)


def test_job_events_are_signed_retried_in_order_and_survive_a_restart(tmp_path):
    port = free_port()
    up = start(tmp_path, port)
    try:
        with webhook_receiver([500] * 1000) as receiver:
            created = up.tass(
                "webhooks", "create", receiver.url, "-e", "job.started", "-e", "job.succeeded",
                "--json", timeout=60,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            secret = json.loads(created.stdout)["secret"]
            api = up.api()
            job_id = api.post("/v1/jobs", json=JOB).json()["id"]
            # the receiver refuses every attempt: the job still runs to the end
            wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded",
                       up.service, 300)  # fmt: skip
            assert {r.answered for r in receiver.received} == {500}
            up.stop()
            with receiver.lock:
                receiver.script.clear()  # from now on the receiver answers 200
                refused = len(receiver.received)
            up = start(tmp_path, port)
            wait_until(lambda: len(receiver.received) >= refused + 2, up.service, 60)
            time.sleep(2)
        verifier = Verifier(secret)
        events = [verifier.verify(r.body, r.headers) for r in receiver.received]
        delivered = [
            (event["type"], r.headers["webhook-id"])
            for event, r in zip(events, receiver.received, strict=True)
            if r.answered == 200
        ]
        assert [kind for kind, _ in delivered] == ["job.started", "job.succeeded"]
        first_ids = {r.headers["webhook-id"] for r in receiver.received if r.answered == 500}
        assert delivered[0][1] in first_ids  # the event refused before the restart
        assert all(e["data"]["id"] == job_id for e in events)
        assert events[-1]["data"]["status"] == "succeeded"
    finally:
        up.stop()
