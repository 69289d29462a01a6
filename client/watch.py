"""Following a job until it ends: by polling (`status --watch`) or by its event stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tass.client.api_client import Json, TassClient
from tass.client.errors import ServerUnreachable, TassError
from tass.client.sse import ServerSentEvent
from tass.contract.statuses import FINAL_STATUSES, JobStatus


class JobView(Protocol):
    def update(self, job: Mapping[str, Any]) -> None: ...


def exit_code_for(status: str | None) -> int:
    """0 for a job that succeeded, 1 for one that failed or was cancelled."""
    return 0 if status == JobStatus.SUCCEEDED else 1


def watch_job(
    client: TassClient,
    job_id: str,
    view: JobView,
    *,
    interval: float = 1.0,
    max_unreachable: int = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> Json:
    """Poll GET /v1/jobs/{id}, showing each state in `view`, until the job is final.

    Up to `max_unreachable` failed polls in a row are tolerated (an API restart); then the last
    `ServerUnreachable` is raised. Returns the final job.
    """
    failures = 0
    while True:
        try:
            job = client.get_job(job_id)
        except ServerUnreachable:
            failures += 1
            if failures > max_unreachable:
                raise
            sleep(max(interval, 1.0))
            continue
        failures = 0
        view.update(job)
        if job.get("status") in FINAL_STATUSES:
            return job
        sleep(interval)


def follow_events(
    client: TassClient,
    job_id: str,
    on_event: Callable[[ServerSentEvent], None],
    *,
    max_reconnects: int = 5,
    reconnect_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Pass each event of the job's stream to `on_event` until a terminal `status` event.

    Every reopened stream resumes after the last event id seen (`Last-Event-ID`), so nothing is
    lost or repeated. A stream the server ends for its lifetime (an `end` event, reason
    `lifetime`) is reopened at once. When a stream ends or drops otherwise, the job is read: a
    final job ends the follow, else the stream is reopened (up to `max_reconnects` times in a
    row without an event). Returns the terminal status.
    """
    attempts = 0
    last_event_id: str | None = None
    while True:
        ended_by_lifetime = False
        try:
            for event in client.iter_events(job_id, last_event_id=last_event_id):
                if event.event == "end":
                    ended_by_lifetime = _end_reason(event) == "lifetime"
                    continue
                attempts = 0
                last_event_id = event.id or last_event_id
                on_event(event)
                status = _status_of(event)
                if status in FINAL_STATUSES:
                    return status
        except ServerUnreachable:
            pass  # a dropped stream: the job read below raises if the server is really gone
        if ended_by_lifetime:
            continue
        job = client.get_job(job_id)
        status = str(job.get("status"))
        if status in FINAL_STATUSES:
            return status
        attempts += 1
        if attempts > max_reconnects:
            raise TassError(
                f"the event stream of job {job_id} keeps ending before the job does "
                f"(it is {status})"
            )
        sleep(reconnect_delay)


def _end_reason(event: ServerSentEvent) -> str | None:
    try:
        data = event.json()
    except ValueError:
        return None
    return data.get("reason") if isinstance(data, dict) else None


def _status_of(event: ServerSentEvent) -> str | None:
    if event.event != "status":
        return None
    try:
        data = event.json()
    except ValueError:
        return None
    return data.get("status") if isinstance(data, dict) else None
