"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tass.core.db import ping_database

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive: answered on the event loop, so it answers even while every
    handler thread is busy."""
    return {"status": "ok"}


def _check_all(request: Request) -> dict[str, str]:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        ping_database(state.engine)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        with state.producer.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    try:
        state.store.ping()
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"error: {type(exc).__name__}"
    return checks


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Database, broker and object store reachable: 200, else 503 with which one failed;
    `read_cache` says whether this process's read cache is live, off or disabled (and why)."""
    checks = await run_in_threadpool(_check_all, request)
    ready = all(value == "ok" for value in checks.values())
    # the read cache is no readiness condition (off, every read goes to the database), but
    # a psycopg that cannot keep it honest is reported here (and logged at start-up)
    read_cache = request.app.state.change_feed.state
    return JSONResponse(
        {"ready": ready, "checks": checks, "read_cache": read_cache},
        status_code=200 if ready else 503,
    )
