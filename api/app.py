"""The FastAPI application factory: `uvicorn api.app:create_app --factory`."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import Semaphore, to_thread
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tass.api import dashboard, prometheus
from tass.api.auth import AuthFailureThrottle, RateLimiter
from tass.api.body_deadline import BodyDeadline
from tass.api.body_limit import BodySizeLimit
from tass.api.control_characters import ControlCharacterGuard
from tass.api.docs import (
    DOCS_STATIC_URL,
    docs_assets,
    docs_router,
    docs_urls,
    document_principal_credentials,
)
from tass.api.errors import install_error_handlers
from tass.api.host_allowlist import HostAllowlist
from tass.api.prometheus import DatabaseCollector, HttpMetrics, make_registries
from tass.api.routers import (
    datasets,
    health,
    job_events,
    job_metrics,
    job_tensorboard,
    jobs,
    models,
    pools,
    queue,
    sweeps,
    tenants,
    webhooks,
    workers,
)
from tass.api.routers import job_logs as job_log_routes
from tass.api.routers import predict as predictions
from tass.api.routers import registry as model_registry
from tass.api.security_headers import SecurityHeaders
from tass.api.streams import JobEventHub
from tass.core.change_feed import start_change_feed
from tass.core.db import make_engine, make_session_factory
from tass.core.objectstore import ObjectStore
from tass.core.queue import make_producer
from tass.core.settings import Settings, get_settings
from tass.core.tracing import trace_task_publishing
from tass.migrations.runner import check_schema_current

log = logging.getLogger(__name__)
TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine, store and producer are created in the lifespan, not here."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_data_dir()
        # handlers run on the AnyIO thread pool. Each thread (a handler, a key lookup, a status
        # read in a session of its own) and each open request session may hold a connection,
        # so the pool keeps one for each of both (and a little overflow): a thread never waits
        # for a connection that a session waiting for a thread holds (README "Scaling")
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        app.state.session_slots = Semaphore(settings.api_threads)  # see api.deps.get_session
        engine = make_engine(settings.resolved_database_url, pool_size=2 * settings.api_threads)
        check_schema_current(engine)  # refuses to start on an out-of-date schema
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        # keys and job statuses answered from memory until the database says they changed
        app.state.change_feed = start_change_feed(engine)
        app.state.store = ObjectStore(settings.resolved_artifact_url)
        app.state.producer = make_producer(settings)
        app.state.rate_limiter = RateLimiter(
            settings.rate_limit, settings.resolved_rate_limit_storage_url
        )
        app.state.event_hub = JobEventHub(
            lambda: app.state.session_factory,
            lambda: app.state.change_feed,
            poll_seconds=settings.sse_poll_seconds,
            lifetime_seconds=settings.sse_stream_lifetime_seconds,
            max_streams_per_key=settings.sse_max_streams_per_key,
            max_streams=settings.sse_max_streams,
        )
        log.info("tass API ready (database %s)", engine.url.render_as_string(hide_password=True))
        app.state.auth_throttle = AuthFailureThrottle(
            settings.auth_failure_limit, settings.resolved_rate_limit_storage_url
        )
        # start-up's objects (imports, routes, schemas) leave the collector's generations, and
        # the youngest generation is collected every 20,000 allocations instead of 700: a
        # request allocates hundreds, and each collection cost a few percent of throughput.
        # Once per process: a later start (tests build many apps) would freeze garbage too.
        if gc.get_freeze_count() == 0:
            gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        try:
            yield
        finally:
            app.state.producer.close()
            app.state.change_feed.close()
            if getattr(app.state, "serving_client", None) is not None:
                await app.state.serving_client.aclose()
            engine.dispose()

    app = FastAPI(
        title="tass",
        summary="Training as a service: Keras training and evaluation jobs over HTTP.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
        redirect_slashes=False,  # Starlette's slash redirect echoes the Host header
        **docs_urls(settings.public_docs),
    )
    install_error_handlers(app)
    if settings.opentelemetry:  # the request's trace continues into the worker's job
        trace_task_publishing()
    registry, http_registry = make_registries(
        DatabaseCollector(lambda: app.state.session_factory, settings.heartbeat_timeout_seconds)
    )
    app.state.metrics_registry = registry
    app.add_middleware(ControlCharacterGuard)  # before any route reads a path id or query
    app.add_middleware(HttpMetrics, registry=http_registry)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        predict_max_bytes=settings.max_predict_bytes,
    )
    app.add_middleware(
        BodyDeadline,
        timeout_seconds=settings.body_timeout_seconds,
        min_bytes_per_second=settings.body_min_bytes_per_second,
    )
    app.add_middleware(HostAllowlist, allowed_hosts=settings.resolved_allowed_hosts)
    app.add_middleware(SecurityHeaders)
    if settings.forwarded_allow_ips:  # outermost: every part sees the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    for module in (health, jobs, job_metrics, models, sweeps, workers, prometheus):
        app.include_router(module.router)
    for module in (queue, pools, tenants):
        app.include_router(module.router)
    app.include_router(job_events.router)
    app.include_router(job_log_routes.router)
    app.include_router(job_tensorboard.router)
    app.include_router(webhooks.router)
    app.include_router(datasets.router)
    app.include_router(model_registry.router)
    app.include_router(predictions.router)
    app.include_router(docs_router(app, settings.public_docs))
    app.mount(DOCS_STATIC_URL, docs_assets(), name="docs-static")
    dashboard.install(app)
    document_principal_credentials(app)
    return app
