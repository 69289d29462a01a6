"""Rate-limit counters that outlive an outage of their shared storage (Redis).

The per-key request limit and the per-address login throttle count in the shared storage, so
every API process sees every hit. When that storage is unreachable the counting moves to this
process's memory (the same limit, kept per process: a local bound), a warning is logged, and
the storage is tried again every `RETRY_SECONDS`; the first call that reaches it again moves
the counting back and logs that. Reads that do not need the broker keep working through a
Redis outage instead of failing with a 500."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from limits import RateLimitItem, storage, strategies
from limits.errors import StorageError
from limits.util import WindowStats

log = logging.getLogger(__name__)

T = TypeVar("T")
Strategy = strategies.MovingWindowRateLimiter | strategies.SlidingWindowCounterRateLimiter

# a request never waits longer than this for a storage that does not answer (redis-py's
# default is the operating system's connect timeout, minutes); a URL's own options win
STORAGE_TIMEOUT_SECONDS = 1.0


def open_storage(url: str) -> storage.Storage:
    """The `limits` storage at `url`, its errors raised as StorageError."""
    options: dict[str, float | str | bool] = {}
    if url.startswith("redis"):
        options["socket_connect_timeout"] = STORAGE_TIMEOUT_SECONDS
        options["socket_timeout"] = STORAGE_TIMEOUT_SECONDS
    found = storage.storage_from_string(url, wrap_exceptions=True, **options)
    if not isinstance(found, storage.Storage):  # an async storage: the limiter is synchronous
        raise ValueError(f"rate-limit storage {url.split('://')[0]}:// is not synchronous")
    return found


class FallbackCounters:
    """A `limits` strategy over the shared storage, with the same strategy over process
    memory standing in while the shared storage is unreachable."""

    RETRY_SECONDS = 5.0

    def __init__(
        self, strategy: Callable[[Any], Strategy], shared: storage.Storage, name: str
    ) -> None:
        self.shared = strategy(shared)
        self.local = strategy(storage.MemoryStorage())
        self.name = name
        self.degraded = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def _call(self, method: Callable[[Strategy], T]) -> T:
        if time.monotonic() >= self._retry_at:
            try:
                result = method(self.shared)
            except StorageError as exc:
                self._lost(exc)
            else:
                if self.degraded:
                    self._regained()
                return result
        return method(self.local)

    def _lost(self, exc: StorageError) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            if self.degraded:
                return
            self.degraded = True
        log.warning(
            "%s: the shared rate-limit storage is unreachable (%s); counting in this "
            "process's memory until it answers again (retried every %.0f s)",
            self.name,
            exc,
            self.RETRY_SECONDS,
        )

    def _regained(self) -> None:
        with self._lock:
            if not self.degraded:
                return
            self.degraded = False
        log.warning("%s: the shared rate-limit storage answers again; counting there", self.name)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self._call(lambda strategy: strategy.hit(item, *identifiers, cost=cost))

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self._call(lambda strategy: strategy.test(item, *identifiers, cost=cost))

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return self._call(lambda strategy: strategy.get_window_stats(item, *identifiers))
