"""A per-process cache of hot reads that the database itself keeps honest.

The API's busiest path is a poll: who holds this key, what is this job's status. Each answer
depends on a handful of rows (`api_keys`; `jobs` and `job_transitions`) that change far less
often than they are read. `ReadCache` keeps such answers in memory and a change feed drops
them when those rows change, whoever changes them (an API process, a worker, the reaper):

- **PostgreSQL**: triggers (migrations 0011, 0013) send `NOTIFY tass_changes` with `job:<id>`
  or `keys` in the writing transaction, delivered at commit (not for an update that changes
  nothing, nor for a bare heartbeat within the minute); one thread per process LISTENs and
  drops what changed. Until it listens, and whenever its connection is lost, the cache is off
  (every read goes to the database) and emptied, so a missed notification never serves a
  stale answer. A closed connection is noticed at once; one cut without a word (a network
  partition) within about 10 s (a health query every second, TCP keepalives, a 10 s TCP user
  timeout), and until then answers can lag by that long.
- **SQLite**: `PRAGMA data_version` on a connection of its own changes whenever any other
  connection (any process) commits; every lookup compares it first and empties the cache on a
  change. Cheap (it reads the WAL index in shared memory), and there is no delay at all.

A read that races a change never stores a stale answer past the change: `put` only stores a
value read after the last drop (`epoch`), and a change that commits while a read runs drops
the entry when its notification arrives. On PostgreSQL an answer can lag its commit by the
notification's delivery (milliseconds, barring a partition); on SQLite it cannot lag.

The listener needs psycopg 3.2.4 or later (`notifies(timeout=)` came in 3.2; 3.2.0-3.2.3 drop
notifications that arrive while a query runs, psycopg#962, which the health query makes
likely). With an older psycopg it logs an error, keeps the cache off for good, and says so in
`/readyz` (`read_cache`), instead of dying quietly or serving stale answers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

import anyio
from sqlalchemy import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "tass_changes"
JOB_PREFIX = "job:"  # a payload prefix: this job (or one of its transitions) changed
MAX_ENTRIES = 20_000  # past this the cache starts over (a bound, not an eviction policy)
RECONNECT_SECONDS = 1.0
MIN_PSYCOPG = (3, 2, 4)  # see the module's docstring
HEALTH_CHECK_SECONDS = 1.0
# the listener's connection: named for pg_stat_activity, and TCP keepalives so a peer that
# vanished without a word is noticed in seconds, not hours
LISTENER_OPTIONS: dict[str, Any] = {
    "application_name": "tass-change-feed",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
# and the server's side of it: a process that is wedged but connected (its kernel still
# acknowledges, nobody reads) stops draining its socket, and its backend, stuck writing
# notifications to it, would hold back PostgreSQL's notification queue for every listener
# until the queue filled and every job write failed at commit. With a TCP user timeout on
# the backend's socket the server drops such a listener after this long without progress.
SERVER_USER_TIMEOUT_MS = 30_000


def job_keys(job_id: str) -> tuple[Hashable, Hashable]:
    """What a change to a job (its row, its transitions, its metrics, written with its
    progress) drops: its rendered status (`("job", id)`, polls) and its event streams' mark
    (`("job-events", id)`: api/streams.py reads the job again only once that is gone)."""
    return ("job", job_id), ("job-events", job_id)


class ReadCache:
    """Answers keyed by what they answer (`("job", id)`, `("key", digest)`), each valid
    until the feed drops it. Safe to use from the event loop and from worker threads."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.epoch = 0  # moves on every drop; `put` refuses values read before a drop
        self.live = False  # off until the feed can see every change

    def get(self, key: Hashable) -> Any | None:
        return self._entries.get(key) if self.live else None

    def put(self, key: Hashable, value: Any, epoch: int) -> None:
        """Store `value`, read when `epoch` was current, unless anything was dropped since."""
        with self._lock:
            if not self.live or epoch != self.epoch:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value

    def drop(self, *keys: Hashable) -> None:
        with self._lock:
            self.epoch += 1
            for key in keys:
                self._entries.pop(key, None)

    def clear(self, *, live: bool | None = None) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.clear()
            if live is not None:
                self.live = live


class ChangeFeed:
    """No feed: nothing is cached (a database the feed cannot watch, or tests that roll
    back their writes, which no feed ever sees)."""

    def __init__(self) -> None:
        self.cache = ReadCache()
        # key -> (the epoch it started at, the read); on the event loop only
        self._reading: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}

    async def read_through(self, key: Hashable, read: Callable[[], T | None]) -> T | None:
        """The cached answer for `key`, else `read()` on a worker thread, cached for the next
        caller. One read per key at a time: callers that miss while it runs (a crowd of
        pollers just after their job changed) wait for that read instead of each running
        their own, unless something changed since it started (then they read anew: a read
        from before a change never answers a request that arrived after it). A caller that
        goes away does not cancel the read the others wait for."""
        cached = self.get(key)
        if cached is not None:
            return cast(T, cached)
        epoch = self.epoch
        reading = self._reading.get(key)
        if reading is None or reading[0] != epoch:
            task = asyncio.ensure_future(self._read(key, read, epoch))
            reading = self._reading[key] = (epoch, task)
            task.add_done_callback(lambda done: self._finished(key, done))
        return cast(T | None, await asyncio.shield(reading[1]))

    async def _read(self, key: Hashable, read: Callable[[], T | None], epoch: int) -> T | None:
        value = await anyio.to_thread.run_sync(read)
        if value is not None:
            self.put(key, value, epoch)
        return value

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        reading = self._reading.get(key)
        if reading is not None and reading[1] is task:
            del self._reading[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller went away

    @property
    def state(self) -> str:
        """`live`, `off` (no feed, or not listening now) or `disabled: <why>` (for /readyz)."""
        return "live" if self.cache.live else "off"

    def changed_here(self) -> None:
        """This process committed a change: drop every answer now instead of waiting for
        the notification, so a client reads its own writes from this process at once."""
        self.cache.clear()

    def get(self, key: Hashable) -> Any | None:
        """The cached answer for `key`, or None (read the database, then `put`)."""
        return self.cache.get(key)

    def get_many(self, keys: list[Hashable]) -> dict[Hashable, Any]:
        """The cached answers among `keys` (one look at the feed for all of them)."""
        return {key: value for key in keys if (value := self.cache.get(key)) is not None}

    def put(self, key: Hashable, value: Any, epoch: int) -> None:
        self.cache.put(key, value, epoch)

    @property
    def epoch(self) -> int:
        """Take this before reading the database; pass it to `put` with what was read."""
        return self.cache.epoch

    def close(self) -> None:
        self.cache.clear(live=False)


class SQLiteDataVersion(ChangeFeed):
    """Empties the cache whenever another connection has committed since the last look."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._closed = False
        self._version = self._data_version()
        self.cache.clear(live=True)

    def _data_version(self) -> int | None:
        """The database's data version; None once closed (an app's lifespan can end while a
        test still holds the app: it reads from the database from then on)."""
        with self._lock:
            if self._closed:
                return None
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def _catch_up(self) -> None:
        version = self._data_version()
        if version is not None and version != self._version:
            self._version = version
            self.cache.clear()

    def get(self, key: Hashable) -> Any | None:
        self._catch_up()
        return super().get(key)

    def get_many(self, keys: list[Hashable]) -> dict[Hashable, Any]:
        self._catch_up()
        return super().get_many(keys)

    @property
    def epoch(self) -> int:
        self._catch_up()
        return self.cache.epoch

    def close(self) -> None:
        super().close()
        with self._lock:
            self._closed = True
            self._connection.close()


def listener_problem(version: str, connection: Any) -> str | None:
    """Why this psycopg cannot keep the cache honest, or None when it can."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    if numbers < MIN_PSYCOPG:
        return (
            f"psycopg {version} is older than 3.2.4 (it loses notifications that arrive "
            "during a query, psycopg#962); install psycopg>=3.2.4"
        )
    if "timeout" not in inspect.signature(connection.notifies).parameters:
        return f"psycopg {version} has no notifies(timeout=); install psycopg>=3.2.4"
    return None


class PostgresNotifications(ChangeFeed):
    """A thread that LISTENs on `tass_changes` and drops what each notification names."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self.problem: str | None = None  # set for good when this psycopg cannot listen
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tass-change-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    options=f"-c tcp_user_timeout={SERVER_USER_TIMEOUT_MS}",
                    **LISTENER_OPTIONS,
                ) as connection:
                    self.problem = listener_problem(psycopg.__version__, connection)
                    if self.problem is not None:
                        log.error("read cache disabled: %s", self.problem)
                        return
                    self._listen(connection)
            except psycopg.Error as exc:
                log.warning("change feed lost (%s); caching off until it is back", exc)
            finally:
                self._listening.clear()
                self.cache.clear(live=False)
            self._stop.wait(RECONNECT_SECONDS)

    def _listen(self, connection: Any) -> None:
        connection.execute(f"LISTEN {CHANNEL}")
        self.cache.clear(live=True)  # from now on no change goes unseen
        self._listening.set()
        while not self._stop.is_set():
            for note in connection.notifies(timeout=HEALTH_CHECK_SECONDS):
                self.apply(note.payload)
            self._health_check(connection)

    def _health_check(self, connection: Any) -> None:
        """A connection that died quietly must not leave the cache on: ask every second
        (notifications that arrive meanwhile wait in psycopg's backlog, from 3.2.4 on)."""
        connection.execute("SELECT 1")

    def apply(self, payload: str) -> None:
        """Drop what a notification says changed: `job:<id>` that job; anything else (`keys`:
        an API key or a dashboard login changed) empties the cache."""
        if payload.startswith(JOB_PREFIX):
            self.cache.drop(*job_keys(payload.removeprefix(JOB_PREFIX)))
        else:
            self.cache.clear()

    @property
    def state(self) -> str:
        return f"disabled: {self.problem}" if self.problem else super().state

    def wait_until_live(self, seconds: float) -> bool:
        """Whether the feed listens within `seconds` (for start-up and tests)."""
        return self._listening.wait(seconds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        super().close()


def start_change_feed(engine: Engine) -> ChangeFeed:
    """The feed for the engine's database: notifications on PostgreSQL, the data version
    of a SQLite file, or none (an in-memory database)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresNotifications(dsn)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SQLiteDataVersion(str(url.database))
    return ChangeFeed()
