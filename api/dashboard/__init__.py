"""The internal dashboard: server-rendered page shells, vanilla JS over the /v1 JSON API.

`install(app)` adds the pages under /dashboard and serves the JS/CSS from /dashboard/static,
so the dashboard works offline (nothing is loaded from a CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tass.api.dashboard.router import STATIC_DIR, router

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the dashboard pages and their static files to `app` (idempotent)."""
    if getattr(app.state, "dashboard_installed", False):
        return
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.state.dashboard_installed = True
