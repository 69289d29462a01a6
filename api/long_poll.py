"""Cheap job status polling: an ETag on the job's representation (`If-None-Match` -> 304)
and `?wait=SECONDS` long-polls that answer as soon as the job changes.

A long-poll holds no database session while it waits: each re-read opens a short read-only
session on a worker thread and closes it, and the wait between re-reads is an `anyio.sleep`
on the event loop (no thread either)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tass.api.schemas import JobOut
from tass.core.states import FINAL_STATUSES, JobStatus


def job_etag(job: JobOut) -> str:
    """A weak validator of the job as the API shows it: it changes whenever any field of the
    response would (status, progress, metrics, heartbeat, transitions...)."""
    digest = hashlib.sha256(job.model_dump_json().encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` (a list of tags, or `*`) with `etag`."""
    if not if_none_match:
        return False
    tags = {_opaque(tag) for tag in if_none_match.split(",")}
    return "*" in tags or _opaque(etag) in tags


async def wait_for_change(
    request: Request,
    read: Callable[[], JobOut],
    current: JobOut,
    baseline: str,
    seconds: float,
    interval: float,
) -> JobOut:
    """Re-read the job every `interval` seconds until its ETag is no longer `baseline` (a tag
    or an If-None-Match list), it is final (it will not change again), `seconds` have passed
    or the client has gone; returns the last read."""
    deadline = time.monotonic() + seconds
    while etag_matches(baseline, job_etag(current)):
        left = deadline - time.monotonic()
        if left <= 0 or JobStatus(current.status) in FINAL_STATUSES:
            break
        await anyio.sleep(min(interval, left))
        if await request.is_disconnected():
            break
        current = await run_in_threadpool(read)
    return current
