"""Prometheus exposition at /metrics: HTTP traffic counted in this process, and job, queue,
worker and training figures read from the database at scrape time (so they are right however
many API and worker processes there are)."""

from __future__ import annotations

import ipaddress
import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tass.api.auth import AuthThrottleDep, BearerDep, admin_key
from tass.contract.statuses import FINAL_STATUSES, JobStatus
from tass.core import job_queries
from tass.core.clock import database_now
from tass.core.db import Session, SessionFactory, read_only_sessions

DURATION_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
QUEUE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
GPUS_PER_JOB = 1  # a worker child runs one job on one device (worker/app.py)

router = APIRouter(tags=["observability"])


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: set when several API processes serve (`tass api --workers`);
    each process then writes its HTTP figures to files there, and a scrape of any of them sums
    every process's (prometheus_client's multiprocess mode)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def make_registries(database: Collector) -> tuple[CollectorRegistry, CollectorRegistry]:
    """(the registry /metrics exposes, the registry HttpMetrics counts into). In multiprocess
    mode the exposed one reads every process's files instead of this process's counters."""
    exposed = CollectorRegistry(auto_describe=False)
    exposed.register(database)
    if multiprocess_dir() is None:
        return exposed, exposed
    multiprocess.MultiProcessCollector(exposed)
    return exposed, CollectorRegistry(auto_describe=False)  # written to files, never exposed


class HttpMetrics:
    """Pure ASGI middleware counting requests and timing them by route template."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "tass_http_requests",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "tass_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - start)


class DatabaseCollector(Collector):
    """Job, queue, worker and training figures, queried once per scrape."""

    def __init__(self, factory: Callable[[], SessionFactory], worker_timeout: float) -> None:
        self.factory, self.worker_timeout = factory, worker_timeout

    def collect(self) -> Iterator[Metric]:
        with read_only_sessions(self.factory())() as session:
            yield from self._jobs(session)
            yield from self._durations(session)
            yield from self._training(session)
            yield from self._reaper_and_workers(session)

    def _jobs(self, session: Session) -> Iterable[Metric]:
        counts = job_queries.job_counts(session)
        submitted = CounterMetricFamily("tass_jobs_submitted", "Jobs submitted.", labels=["type"])
        finished = CounterMetricFamily(
            "tass_jobs_finished", "Jobs that reached a final status.", labels=["type", "status"]
        )
        current = GaugeMetricFamily(
            "tass_jobs", "Jobs by current status.", labels=["type", "status"]
        )
        depth = GaugeMetricFamily("tass_queue_depth", "Queued jobs per queue.", labels=["queue"])
        # what a cluster autoscaler or KEDA scales a worker pool on; a pool is a queue today
        # and every job takes one device (one job per GPU), so it is the pool's queued jobs
        demand = GaugeMetricFamily(
            "tass_gpu_demand_waiting",
            "GPUs the queued jobs of each worker pool wait for (one per job).",
            labels=["pool"],
        )
        pools: set[str] = set()
        by_type: Tally[str] = Tally()
        by_status: Tally[tuple[str, str]] = Tally()  # (type, status)
        by_queue: Tally[str] = Tally()
        for job_type, status, queue, count in counts:
            pools.add(queue)
            by_type[job_type] += count
            by_status[(job_type, status)] += count
            if status == JobStatus.QUEUED.value:
                by_queue[queue] += count
        for job_type in ("train", "evaluate"):
            submitted.add_metric([job_type], by_type[job_type])
            for status in JobStatus:
                current.add_metric([job_type, status.value], by_status[(job_type, status.value)])
                if status in FINAL_STATUSES:
                    finished.add_metric(
                        [job_type, status.value], by_status[(job_type, status.value)]
                    )
        for queue, count in sorted(by_queue.items()):
            depth.add_metric([queue], count)
        for pool in sorted(pools):  # 0 for a pool with nothing waiting: scale-down sees it
            demand.add_metric([pool], by_queue[pool] * GPUS_PER_JOB)
        return [submitted, finished, current, depth, demand]

    def _durations(self, session: Session) -> Iterable[Metric]:
        rows = job_queries.job_times(session)
        run = HistogramMetricFamily(
            "tass_job_duration_seconds", "Time from first start to final status.", labels=["type"]
        )
        wait = HistogramMetricFamily(
            "tass_job_queue_seconds", "Time from submission to first start.", labels=["type"]
        )
        for job_type in ("train", "evaluate"):
            mine = [r for r in rows if r.type == job_type]
            durations = [
                (r.finished_at - r.started_at).total_seconds()
                for r in mine
                if r.started_at and r.finished_at
            ]
            queued = [(r.started_at - r.created_at).total_seconds() for r in mine if r.started_at]
            run.add_metric([job_type], *_buckets(durations, DURATION_BUCKETS))
            wait.add_metric([job_type], *_buckets(queued, QUEUE_BUCKETS))
        return [run, wait]

    def _training(self, session: Session) -> Iterable[Metric]:
        speed = GaugeMetricFamily(
            "tass_training_images_per_second",
            "Training throughput of each running job.",
            labels=["job_id"],
        )
        epoch = GaugeMetricFamily(
            "tass_training_epoch", "Current epoch of each running job.", labels=["job_id"]
        )
        for job_id, progress in job_queries.running_progress(session):
            speed.add_metric([job_id], float(progress.get("images_per_sec") or 0.0))
            epoch.add_metric([job_id], float(progress.get("epoch") or 0))
        return [speed, epoch]

    def _reaper_and_workers(self, session: Session) -> Iterable[Metric]:
        requeues = job_queries.requeue_count(session)
        # Heartbeats are written on the database clock; judge them on it too.
        alive_since = database_now(session).timestamp() - self.worker_timeout
        seen = job_queries.worker_sightings(session)
        alive = sum(
            1 for last, stopped in seen if stopped is None and last.timestamp() >= alive_since
        )
        return [
            CounterMetricFamily(
                "tass_reaper_requeues",
                "Jobs put back in the queue after their worker was lost or shut down.",
                value=requeues,
            ),
            GaugeMetricFamily("tass_workers_alive", "Workers that reported recently.", value=alive),
        ]


def _buckets(values: list[float], bounds: tuple[float, ...]) -> tuple[list, float]:
    cumulative = [(str(b), sum(1 for v in values if v <= b)) for b in bounds]
    cumulative.append(("+Inf", len(values)))
    return cumulative, float(sum(values))


def _allowed_network(request: Request) -> bool:
    host = request.client.host if request.client else None
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    networks = request.app.state.settings.metrics_allow_networks
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def scraper(request: Request, credentials: BearerDep, throttle: AuthThrottleDep) -> None:
    """Open to the configured networks (default: this host); elsewhere an admin key."""
    if not _allowed_network(request):
        admin_key(request, credentials, throttle)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(scraper)])
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
