"""A job starts in a process that was ready before it arrived: the worker's idle pool child
imports TensorFlow and the trainer while it waits (worker/prewarm.py), the job then runs in
that very process, and the Celery parent that forks the children never loads TensorFlow."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.support.embedded import Embedded, running_embedded
from tests.support.processes import wait_for_status

pytestmark = pytest.mark.integration

TINY_JOB = {
    "type": "train",
    "dataset": {"source": "synthetic", "num_examples": 200},
    "spec": {"epochs": 1, "width": 0.125, "batch_size": 64, "jit_compile": "off"},
}
PREWARMED = re.compile(r"job process (\d+) pre-warmed in")


def prewarmed_pids(embedded: Embedded) -> list[int]:
    return [int(pid) for pid in PREWARMED.findall(embedded.service.log_tail(1_000_000))]


def wait_for_prewarmed(embedded: Embedded, count: int, timeout: float = 180) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(pids := prewarmed_pids(embedded)) < count:
        assert time.monotonic() < deadline, embedded.service.log_tail()
        time.sleep(0.3)
    return pids


def loads_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's native library is mapped into process `pid`."""
    return "_pywrap_tensorflow" in Path(f"/proc/{pid}/maps").read_text()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_of(job: dict) -> str:
    """The worker id (`node/pid`) that claimed the job, from its `running` transition."""
    (running,) = [row for row in job["transitions"] if row["status"] == "running"]
    return running["details"]["worker"]


def test_each_job_runs_in_a_process_that_imported_tensorflow_before_the_job_arrived(tmp_path):
    with running_embedded(tmp_path) as embedded, embedded.api() as api:
        (idle,) = wait_for_prewarmed(embedded, 1)
        assert loads_tensorflow(idle), "the idle job process has TensorFlow loaded"
        celery_parent = parent_of(idle)
        assert not loads_tensorflow(celery_parent), "the parent that forks must not load it"

        first = api.post("/v1/jobs", json=TINY_JOB).json()["id"]
        job = wait_for_status(api, first, {"succeeded", "failed"}, 300, embedded.service)
        assert job["status"] == "succeeded", job
        assert worker_of(job).endswith(f"/{idle}"), (worker_of(job), idle)

        # the job's process exited (one job per process); its replacement warmed up while idle
        pids = wait_for_prewarmed(embedded, 2)
        successor = pids[-1]
        assert successor != idle and loads_tensorflow(successor)
        assert not loads_tensorflow(celery_parent)
        second = api.post("/v1/jobs", json=TINY_JOB).json()["id"]
        job = wait_for_status(api, second, {"succeeded", "failed"}, 300, embedded.service)
        assert job["status"] == "succeeded", job
        assert worker_of(job).endswith(f"/{successor}"), (worker_of(job), successor)
