"""A small asyncio + httpx load generator: N concurrent clients looping over GET paths for a
fixed time, and slow readers of a download. Used by the integration load tests and by
benchmarks/load.py (which adds the service start-up and the report)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

OK_STATUSES = frozenset({200, 202, 304})


@dataclass
class LoadResult:
    """What one scenario measured: latencies of successful requests, and failures by kind."""

    name: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        """The q-th percentile latency in seconds (0 when nothing succeeded)."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    def summary(self) -> dict[str, object]:
        return {
            "scenario": self.name,
            "clients": self.clients,
            "requests": self.requests,
            "req_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(50) * 1000, 1),
            "p99_ms": round(self.percentile(99) * 1000, 1),
            "errors": dict(self.errors),
        }


async def _client_loop(
    client: httpx.AsyncClient, paths: list[str], offset: int, stop_at: float, result: LoadResult
) -> None:
    turn = offset
    while time.monotonic() < stop_at:
        path = paths[turn % len(paths)]
        turn += 1
        started = time.perf_counter()
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            result.errors[type(exc).__name__] += 1
            continue
        if response.status_code in OK_STATUSES:
            result.latencies.append(time.perf_counter() - started)
        else:
            result.errors[f"HTTP {response.status_code}"] += 1


async def hammer(
    base_url: str,
    headers: dict[str, str],
    paths: list[str],
    *,
    clients: int,
    seconds: float,
    name: str = "load",
    timeout: float = 10.0,
) -> LoadResult:
    """`clients` concurrent clients (one connection each) GET `paths` in turn for `seconds`."""
    result = LoadResult(name, clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, limits=limits
    ) as client:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(_client_loop(client, paths, i, stop_at, result) for i in range(clients))
        )
        result.seconds = time.monotonic() - started
    return result


async def slow_download(
    base_url: str,
    headers: dict[str, str],
    path: str,
    *,
    bytes_per_second: int,
    stop: asyncio.Event,
    chunk: int = 16 * 1024,
) -> int:
    """Read a download at about `bytes_per_second` until it ends or `stop` is set; returns the
    bytes read. The client's small reads keep the server's socket full, as a slow link does."""
    got = 0
    async with (
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client,
        client.stream("GET", path) as response,
    ):
        response.raise_for_status()
        async for data in response.aiter_raw(chunk):
            got += len(data)
            if stop.is_set():
                break
            await asyncio.sleep(len(data) / bytes_per_second)
    return got
