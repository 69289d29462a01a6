"""SSE fan-out: many open `/v1/jobs/{id}/events` streams on one job, and what they cost the
requests beside them.

Starts the embedded service (SQLite, the API alone, as `tass up` runs it) on loopback, submits
one job and keeps its progress changing (a writer thread stands in for a worker: one update per
`--update-seconds`), measures `/healthz` and `GET /v1/jobs/{id}` latency idle, then opens
`--streams` streams on the job (a child process reads them all) and, once all are open, measures
the same requests again. Prints the figures and the loaded/idle ratios as JSON.

    .venv/bin/python benchmarks/sse_fanout.py --streams 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tass.core.apikeys import create_key  # noqa: E402
from tass.core.db import make_engine, make_session_factory  # noqa: E402
from tass.core.models import Job  # noqa: E402
from tass.migrations.runner import upgrade  # noqa: E402
from tass.operators.service import api_command  # noqa: E402
from tests.support.processes import Service, free_port, wait_http  # noqa: E402


def latency_ms(client: httpx.Client, path: str, count: int) -> dict[str, float]:
    """p50/p99/max of `count` sequential GETs, in milliseconds; any non-200 is an error."""
    samples, errors = [], 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            ok = client.get(path).status_code == 200
        except httpx.HTTPError:
            ok = False
        samples.append((time.perf_counter() - start) * 1000)
        errors += not ok
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 2),
        "p99": round(samples[int(len(samples) * 0.99) - 1], 2),
        "max": round(samples[-1], 2),
        "errors": errors,
    }


async def _hold_streams(url: str, key: str, job_id: str, count: int, ready: Any, stop: Any) -> dict:
    """Open `count` streams, set `ready`, keep reading them until `stop`; count events and
    failures."""
    opened, events, failures = 0, 0, 0
    reasons: dict[str, int] = {}
    all_open = asyncio.Event()
    limits = httpx.Limits(max_connections=count + 5, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def one() -> None:
            nonlocal opened, events, failures
            try:
                async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
                    if r.status_code != 200:
                        failures += 1
                        reasons[str(r.status_code)] = reasons.get(str(r.status_code), 0) + 1
                        return
                    opened += 1
                    if opened == count:
                        all_open.set()
                    async for line in r.aiter_lines():
                        events += line.startswith("event:")
            except httpx.HTTPError as exc:
                failures += 1
                reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_open.wait(), timeout=60)
        open_seconds = time.perf_counter() - started
        ready.set()
        held_from = time.perf_counter()
        await asyncio.to_thread(stop.wait, 600)
        held_seconds = time.perf_counter() - held_from
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "opened": opened,
        "failures": failures,
        "failure_reasons": reasons,
        "events": events,
        "open_seconds": round(open_seconds, 2),
        "held_seconds": round(held_seconds, 2),
        "events_per_second": round(events / max(held_seconds + open_seconds, 1e-6)),
    }


def hold_streams(
    url: str, key: str, job_id: str, count: int, ready: Any, stop: Any, out: Any
) -> None:
    out.put(asyncio.run(_hold_streams(url, key, job_id, count, ready, stop)))


def keep_progress_changing(
    database_url: str, job_id: str, every: float, stop: threading.Event
) -> None:
    """Stand in for a worker: write a new progress value to the job every `every` seconds."""
    factory = make_session_factory(make_engine(database_url))
    step = 0
    while not stop.wait(every):
        step += 1
        with factory() as session:
            session.get_one(Job, job_id).progress = {"epoch": 1, "epochs": 1, "step": step}
            session.commit()


def measure(args: argparse.Namespace, url: str, key: str, job_id: str, database_url: str) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        paths = {"healthz": "/healthz", "status": f"/v1/jobs/{job_id}"}
        idle = {name: latency_ms(client, path, args.requests) for name, path in paths.items()}

        stop = threading.Event()
        writer = threading.Thread(
            target=keep_progress_changing,
            args=(database_url, job_id, args.update_seconds, stop),
            daemon=True,
        )
        writer.start()
        spawn = multiprocessing.get_context("spawn")
        results: Any = spawn.Queue()
        ready, done = spawn.Event(), spawn.Event()
        holder = spawn.Process(
            target=hold_streams, args=(url, key, job_id, args.streams, ready, done, results)
        )
        holder.start()
        ready.wait(120)  # every stream is open (or the holder gave up waiting)
        loaded = {name: latency_ms(client, path, args.requests) for name, path in paths.items()}
        time.sleep(args.seconds)  # and the streams keep receiving a while longer
        done.set()
        streams = results.get(timeout=120)
        holder.join(30)
        stop.set()
        writer.join(10)
    ratios = {
        f"{name}_{q}": round(loaded[name][q] / max(idle[name][q], 1e-6), 2)
        for name in paths
        for q in ("p50", "p99")
    }
    return {"idle": idle, "with_streams": loaded, "streams": streams, "ratio": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="streams stay open this long after measuring"
    )
    parser.add_argument("--requests", type=int, default=200, help="latency samples per figure")
    parser.add_argument("--update-seconds", type=float, default=0.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tass-sse-fanout-") as data_dir:
        database_url = f"sqlite:///{data_dir}/tass.db"
        upgrade(database_url)
        with make_session_factory(make_engine(database_url))() as session:
            _, key = create_key(session, "bench")
            session.commit()
        env = {
            "TASS_DATA_DIR": data_dir,
            "TASS_RATE_LIMIT": "1000000/minute",
            "TASS_SSE_MAX_STREAMS_PER_KEY": str(args.streams + 10),
            "TASS_SSE_MAX_STREAMS": str(args.streams + 10),
        }
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TASS_")}, **env}
        port = free_port()
        api = Service("api", api_command("127.0.0.1", port), env, Path(data_dir))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/healthz", api)
            body = {"type": "train", "dataset": {"source": "synthetic", "num_examples": 100}}
            submitted = httpx.post(
                f"{url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            submitted.raise_for_status()
            report = measure(args, url, key, submitted.json()["id"], database_url)
        finally:
            api.stop()
            log = api.log_tail(2_000_000)
            if "Traceback" in log or "unavailable" in log:
                print(log[-6000:], file=sys.stderr)
    report["config"] = {**vars(args), "cpu_count": os.cpu_count(), "loadavg": os.getloadavg()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
