"""Live job event streams that scale: one shared poller per job per process, fanned out to every
open stream of that job, with caps on open streams per API key and per process.

A poller reads the job in one short session (`core.job_events`) and also re-checks the keys of
its streams and the dashboard login sessions of those opened with one, so N streams on one job
cost one read, not N, and a revoked key's streams, or a logged-out session's, end within one
poll interval. It rides the change feed, as status long-polls do (core/change_feed.py): after
each read it leaves a mark in the feed, which a change to the job, an API key or a dashboard
login drops; every interval it looks at the mark in memory and reads the database again only
once it is gone (or a login of its streams reaches its expiry). With the feed off (not
listening yet, its connection lost) nothing is held and it reads every interval.

Every event carries an `id:` that is a cursor (last epoch, transition count, progress tag): a
client that reconnects with `Last-Event-ID` resumes exactly after what it saw. A stream ends
after a bounded lifetime with an `end` event."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool

from tass.contract.statuses import FINAL_STATUSES, JobStatus
from tass.core.apikeys import revoked_among
from tass.core.change_feed import ChangeFeed, job_keys
from tass.core.dashboard_sessions import live_expiries
from tass.core.db import SessionFactory, read_only_sessions
from tass.core.errors import DomainError
from tass.core.job_events import JobEventState, read_job_event_state

log = logging.getLogger(__name__)

Event = dict[str, Any]
RECONNECT_MILLISECONDS = 1000  # the `retry:` hint sent with a lifetime end
LEAK_GRACE_SECONDS = 5.0  # a stream still registered this long past its lifetime never started


@dataclass(frozen=True)
class StreamCursor:
    """How far a client has seen a job's events; encoded as the `id:` of each event."""

    epoch: int = -1
    transitions: int = 0
    progress: str = ""

    def encode(self) -> str:
        return f"{self.epoch}.{self.transitions}.{self.progress}"

    @classmethod
    def decode(cls, text: str | None) -> StreamCursor:
        """The cursor of a `Last-Event-ID`; a missing or malformed one replays from the start."""
        parts = (text or "").strip().split(".")
        if len(parts) != 3:
            return cls()
        try:
            epoch, transitions = int(parts[0]), int(parts[1])
        except ValueError:
            return cls()
        tag = parts[2]
        if epoch < -1 or transitions < 0 or len(tag) > 16 or (tag and not tag.isalnum()):
            return cls()
        return cls(epoch, transitions, tag)


def progress_tag(progress: dict[str, Any] | None) -> str:
    """A short digest of a progress value: the same progress is never sent twice."""
    if not progress:
        return ""
    return format(zlib.crc32(json.dumps(progress, sort_keys=True).encode()), "08x")


def events_since(state: JobEventState, cursor: StreamCursor) -> tuple[list[Event], StreamCursor]:
    """The events a client at `cursor` has not seen (metrics, then progress, then status), each
    with the cursor after it as its id, and the new cursor."""
    events: list[Event] = []
    for step, values in state.epochs:
        if step <= cursor.epoch:
            continue
        cursor = replace(cursor, epoch=step)
        data = {"kind": "epoch", "step": step, "values": values}
        events.append({"event": "metrics", "data": json.dumps(data), "id": cursor.encode()})
    tag = progress_tag(state.progress)
    if tag and tag != cursor.progress:
        cursor = replace(cursor, progress=tag)
        events.append(
            {"event": "progress", "data": json.dumps(state.progress), "id": cursor.encode()}
        )
    if state.transitions > cursor.transitions:
        cursor = replace(cursor, transitions=state.transitions)
        data = {"status": state.status, "at": state.last_transition_at}
        events.append({"event": "status", "data": json.dumps(data), "id": cursor.encode()})
    return events, cursor


def end_event(reason: str, detail: str) -> Event:
    """The last event of a stream the server ends before the job does (no id: it is no data)."""
    event: Event = {"event": "end", "data": json.dumps({"reason": reason, "detail": detail})}
    if reason == "lifetime":
        event["retry"] = RECONNECT_MILLISECONDS
    return event


@dataclass(frozen=True)
class Revoked:
    """What one poll found ended among its streams' credentials, and when the first of the
    dashboard logins still live expires."""

    keys: set[int]
    sessions: set[int]
    next_expiry: datetime | None = None


class StreamLimitReached(DomainError):
    """Too many open streams for this key or this process (429); `retry_after` is when one
    ends."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(eq=False)
class Subscription:
    """One open stream: its job, its key (and dashboard session, when it was opened with the
    login cookie), and when the server ends it."""

    job_id: str
    key_id: int
    deadline: float
    hub: JobEventHub
    session_id: int | None = None
    poller: JobPoller | None = field(default=None, repr=False)

    def attach(self) -> JobPoller:
        self.poller = self.hub.attach(self)
        return self.poller

    def close(self) -> None:
        self.hub.release(self)


class JobPoller:
    """Polls one job for every stream of it in one event loop; streams wait on `wait_newer`."""

    def __init__(self, job_id: str, hub: JobEventHub) -> None:
        self.job_id = job_id
        self.hub = hub
        self.subscriptions: set[Subscription] = set()
        self.state: JobEventState | None = None
        self.gone = False
        self.revoked: frozenset[int] = frozenset()
        self.ended_sessions: frozenset[int] = frozenset()
        self.version = 0
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.recheck = False  # a stream joined: read again (its key may have changed before)
        self._mark = job_keys(job_id)[1]
        self._token = object()  # this poller's mark, as the feed holds it
        self._next_expiry: datetime | None = None

    async def wait_newer(self, seen_version: int, timeout: float) -> bool:
        """True once a poll newer than `seen_version` is published; False after `timeout`."""
        if self.version > seen_version:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Poll until the job is final or gone (its last state stays for later streams)."""
        while True:
            if self._unchanged():
                await asyncio.sleep(self.hub.poll_seconds)
                continue
            self.recheck = False
            feed = self.hub.change_feed()
            epoch = feed.epoch  # before the read: a change during it drops the mark below
            key_ids = {subscription.key_id for subscription in self.subscriptions}
            session_ids = {s.session_id for s in self.subscriptions if s.session_id is not None}
            after = self.state.epochs[-1][0] if self.state and self.state.epochs else -1
            try:
                state, revoked = await run_in_threadpool(self._poll, key_ids, session_ids, after)
            except Exception:
                log.warning(
                    "polling job %s for its event streams failed", self.job_id, exc_info=True
                )
                await asyncio.sleep(self.hub.poll_seconds)
                continue
            self._publish(state, revoked)
            if self.gone or (self.state and JobStatus(self.state.status) in FINAL_STATUSES):
                return
            self._next_expiry = revoked.next_expiry
            feed.put(self._mark, self._token, epoch)
            await asyncio.sleep(self.hub.poll_seconds)

    def _unchanged(self) -> bool:
        """Nothing this poller reads has changed since its last read: the feed still holds
        the mark it left then, no stream joined since, and no dashboard login of its streams
        has reached its expiry (time passing changes no row)."""
        if self.recheck or self.state is None:
            return False
        expiry = self._next_expiry
        if expiry is not None and datetime.now(timezone.utc) >= expiry:
            return False
        return self.hub.change_feed().get(self._mark) is self._token

    def _poll(
        self, key_ids: set[int], session_ids: set[int], after: int
    ) -> tuple[JobEventState | None, Revoked]:
        self.hub.polls += 1
        with read_only_sessions(self.hub.session_factory())() as session:
            state = read_job_event_state(session, self.job_id, after_epoch=after)
            live = live_expiries(session, session_ids)
            revoked = Revoked(
                revoked_among(session, key_ids),
                session_ids - live.keys(),
                min(live.values(), default=None),
            )
            return state, revoked

    def _publish(self, state: JobEventState | None, revoked: Revoked) -> None:
        if state is None:
            self.gone = True
        elif self.state is not None:
            state = replace(state, epochs=self.state.epochs + state.epochs)
        unchanged = (
            state == self.state
            and revoked.keys <= self.revoked
            and revoked.sessions <= self.ended_sessions
        )
        self.state = state if state is not None else self.state
        self.revoked = self.revoked | revoked.keys
        self.ended_sessions = self.ended_sessions | revoked.sessions
        if unchanged and not self.gone:
            return
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()


class JobEventHub:
    """The process's open streams (capped per key and in all) and its per-job pollers."""

    def __init__(
        self,
        session_factory: Callable[[], SessionFactory],
        change_feed: Callable[[], ChangeFeed],
        *,
        poll_seconds: float,
        lifetime_seconds: float,
        max_streams_per_key: int,
        max_streams: int,
    ) -> None:
        self.session_factory = session_factory
        self.change_feed = change_feed
        self.poll_seconds = poll_seconds
        self.lifetime_seconds = lifetime_seconds
        self.max_streams_per_key = max_streams_per_key
        self.max_streams = max_streams
        self.polls = 0  # database reads made, for tests and the fan-out benchmark
        self._lock = threading.Lock()  # open() runs in the thread pool, the rest in event loops
        self._open: set[Subscription] = set()
        self._pollers: dict[tuple[asyncio.AbstractEventLoop, str], JobPoller] = {}

    def open(self, job_id: str, key_id: int, session_id: int | None = None) -> Subscription:
        """Register a stream, or raise StreamLimitReached when the key or process is at its cap."""
        now = time.monotonic()
        with self._lock:
            self._open = {s for s in self._open if s.deadline + LEAK_GRACE_SECONDS > now}
            mine = [s for s in self._open if s.key_id == key_id]
            if len(mine) >= self.max_streams_per_key:
                raise StreamLimitReached(
                    f"this API key already has {len(mine)} open event streams, the most allowed: "
                    "close one, or retry later",
                    _seconds_until_first_end(mine, now),
                )
            if len(self._open) >= self.max_streams:
                raise StreamLimitReached(
                    f"this server has {len(self._open)} open event streams, the most it allows: "
                    "retry later, or poll GET /v1/jobs/{id}",
                    _seconds_until_first_end(self._open, now),
                )
            subscription = Subscription(
                job_id, key_id, now + self.lifetime_seconds, self, session_id=session_id
            )
            self._open.add(subscription)
        return subscription

    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def attach(self, subscription: Subscription) -> JobPoller:
        """The running loop's poller of the subscription's job, started if there is none."""
        key = (asyncio.get_running_loop(), subscription.job_id)
        with self._lock:
            poller = self._pollers.get(key)
            if poller is None:
                poller = self._pollers[key] = JobPoller(subscription.job_id, self)
            poller.subscriptions.add(subscription)
            poller.recheck = True
            if poller.task is None:
                poller.task = asyncio.get_running_loop().create_task(poller.run())
        return poller

    def release(self, subscription: Subscription) -> None:
        """Forget a stream; the last stream of a job stops its poller."""
        with self._lock:
            self._open.discard(subscription)
            poller = subscription.poller
            if poller is None:
                return
            poller.subscriptions.discard(subscription)
            if poller.subscriptions:
                return
            for key, candidate in list(self._pollers.items()):
                if candidate is poller:
                    del self._pollers[key]
        if poller.task is not None and not poller.task.done():
            poller.task.cancel()


def _seconds_until_first_end(subscriptions: Any, now: float) -> int:
    first = min((s.deadline for s in subscriptions), default=now + 1)
    return max(1, math.ceil(first - now))


async def stream_job_events(
    subscription: Subscription, cursor: StreamCursor
) -> AsyncIterator[Event]:
    """The events of one stream after `cursor`, until the job is final, the key is revoked,
    the dashboard session it was opened with ends or the stream's lifetime is over; the
    subscription is released however it ends."""
    try:
        poller = subscription.attach()
        seen = 0
        while True:
            remaining = subscription.deadline - time.monotonic()
            if remaining <= 0:
                yield end_event("lifetime", "stream lifetime reached: reconnect with Last-Event-ID")
                return
            if not await poller.wait_newer(seen, remaining):
                continue
            seen = poller.version
            if subscription.key_id in poller.revoked:
                yield end_event("revoked", "the API key of this stream was revoked")
                return
            if subscription.session_id in poller.ended_sessions:
                detail = "the dashboard session of this stream ended (logged out or expired)"
                yield end_event("session_ended", detail)
                return
            if poller.state is None or poller.gone:
                yield end_event("gone", f"job {subscription.job_id} no longer exists")
                return
            events, cursor = events_since(poller.state, cursor)
            for event in events:
                yield event
            if JobStatus(poller.state.status) in FINAL_STATUSES:
                return
    finally:
        subscription.close()
