"""Cheap job status polling: the status response rendered once per change and kept in the
process's read cache (core/change_feed.py), an ETag on it (`If-None-Match` -> 304), and
`?wait=SECONDS` long-polls that answer as soon as the job changes.

A poll of a job that has not changed since this process last rendered it runs no query and
no thread: the key and the job both come from the cache. A list of jobs is one query for the
page's ids, and the jobs' rendered statuses from the same cache (one batch read for the rest).
A long-poll holds no database session while it waits: each re-read (from the cache, else a
short read-only session on a worker thread) happens after an `anyio.sleep` on the event loop."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.requests import Request

from tass.api.presenters import job_out
from tass.api.schemas import JobOut
from tass.contract.statuses import FINAL_STATUSES, JobStatus
from tass.core import job_queries
from tass.core.change_feed import ChangeFeed
from tass.core.db import Session, SessionFactory


@dataclass(frozen=True)
class RenderedJob:
    """A job's status response as a poll sends it: the body, its ETag, and whose job it is."""

    job: JobOut
    tenant: str
    body: bytes
    etag: str

    @classmethod
    def of(cls, snapshot: job_queries.JobSnapshot) -> RenderedJob:
        """The job as `read_job`/`read_jobs` read it, rendered as a poll sends it."""
        job = job_out(snapshot)
        body = job.model_dump_json().encode()
        return cls(job, snapshot.tenant, body, job_etag(body))

    @property
    def final(self) -> bool:
        return JobStatus(self.job.status) in FINAL_STATUSES


def job_etag(body: bytes) -> str:
    """A weak validator of the job as the API shows it: it changes whenever any field of the
    response would (status, progress, metrics, heartbeat, transitions...)."""
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` (a list of tags, or `*`) with `etag`."""
    if not if_none_match:
        return False
    tags = {_opaque(tag) for tag in if_none_match.split(",")}
    return "*" in tags or _opaque(etag) in tags


def render_job_in_own_session(factory: SessionFactory, job_id: str) -> RenderedJob | None:
    """The job's status response read from the database (two queries in a short session of
    its own), whoever's it is: the caller checks who may see it."""
    with factory() as session:
        snapshot = job_queries.read_job(session, job_id)
    return None if snapshot is None else RenderedJob.of(snapshot)


def rendered_jobs(
    feed: ChangeFeed, session: Session, job_ids: list[str], epoch: int
) -> list[RenderedJob]:
    """The rendered statuses of those of `job_ids` that exist, in order: from the read cache,
    the rest read in `session` in one batch (two queries) and cached. `epoch` is the feed's,
    taken before `session` first read, so what it reads is never older than the cache."""
    keys = {job_id: ("job", job_id) for job_id in job_ids}
    found = feed.get_many(list(keys.values()))
    missing = [job_id for job_id, key in keys.items() if key not in found]
    for job_id, snapshot in job_queries.read_jobs(session, missing).items():
        rendered = found[keys[job_id]] = RenderedJob.of(snapshot)
        feed.put(keys[job_id], rendered, epoch)
    return [found[key] for key in keys.values() if key in found]


def job_page_body(jobs: list[RenderedJob], next_cursor: str | None) -> bytes:
    """A JobPage's JSON made of the jobs' rendered bodies, with no validation or rendering
    again (for 50 jobs that cost more than reading them)."""
    items = b",".join(job.body for job in jobs)
    return b'{"items":[%b],"next_cursor":%b}' % (items, json.dumps(next_cursor).encode())


async def job_status(
    feed: ChangeFeed, job_id: str, render: Callable[[], RenderedJob | None]
) -> RenderedJob | None:
    """The job's rendered status: cached, else `render` on a worker thread (then cached)."""
    return await feed.read_through(("job", job_id), render)


async def wait_for_change(
    request: Request,
    read: Callable[[], Awaitable[RenderedJob | None]],
    current: RenderedJob,
    baseline: str,
    seconds: float,
    interval: float,
) -> RenderedJob | None:
    """Re-read the job every `interval` seconds until its ETag is no longer `baseline` (a tag
    or an If-None-Match list), it is final (it will not change again), `seconds` have passed
    or the client has gone; returns the last read (None: the job was deleted meanwhile)."""
    deadline = time.monotonic() + seconds
    while etag_matches(baseline, current.etag):
        left = deadline - time.monotonic()
        if left <= 0 or current.final:
            break
        await anyio.sleep(min(interval, left))
        if await request.is_disconnected():
            break
        latest = await read()
        if latest is None:
            return None
        current = latest
    return current
