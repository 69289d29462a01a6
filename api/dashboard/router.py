"""Dashboard pages, login and logout.

The pages are shells: the browser fills them from the /v1 JSON API with the session cookie.
The cookie holds a server-side session token (core.dashboard_sessions: random, stored hashed,
expiring, ended by logout or by revoking the key), never the API key; every page without a
live session redirects to the login form. Unsafe requests made with the cookie must come from
this origin (api.auth)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tass.api.auth import (
    DASHBOARD_PREFIX,
    SESSION_COOKIE,
    AuthThrottleDep,
    DashboardUserDep,
    SessionCookieDep,
    client_address,
    dashboard_url,
    is_same_origin,
)
from tass.api.deps import SessionDep
from tass.core.apikeys import Principal, authenticate
from tass.core.dashboard_sessions import end_session, start_session

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html

# No inline script or style: everything comes from /dashboard/static; fetch/EventSource
# only to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _static_version() -> str:
    """A digest of the static files: their URLs change when they do (no stale JS after a
    deploy)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()

router = APIRouter(prefix=DASHBOARD_PREFIX, include_in_schema=False)


def _safe_next(value: str | None) -> str | None:
    """Only a path inside the dashboard: never another site (no open redirect)."""
    if not value or not value.startswith("/dashboard") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return None
    return value


def _page(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "base": dashboard_url(request),
            "root": request.scope.get("root_path", "").rstrip("/"),
            "v": STATIC_VERSION,
            "principal": principal,
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return _page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    throttle: AuthThrottleDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    target = _safe_next(next)
    if not is_same_origin(request, allow_missing=True):  # login CSRF
        return _page(
            request, "login.html", None, 403, next=target, error="Cross-site login refused."
        )
    address = client_address(request)
    try:
        throttle.refuse_if_blocked(address)
    except HTTPException as exc:
        error = "Too many failed logins from this address; try again later."
        page = _page(request, "login.html", None, 429, next=target, error=error)
        page.headers.update(exc.headers or {})
        return page
    ttl = request.app.state.settings.session_ttl_seconds
    principal = authenticate(session, api_key.strip())
    token = start_session(session, principal.key_id, ttl) if principal else None
    if principal is None or token is None:
        throttle.record_failure(address)
        return _page(
            request, "login.html", None, 401, next=target, error="Invalid or revoked API key."
        )
    response = RedirectResponse(target or dashboard_url(request), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, token: SessionCookieDep) -> Response:
    response = RedirectResponse(dashboard_url(request, "/login"), status_code=303)
    if is_same_origin(request, allow_missing=False):
        if token:
            end_session(session, token)
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/")
def trailing_slash(request: Request) -> Response:
    """A path-only redirect: never built from the Host header."""
    return RedirectResponse(dashboard_url(request), status_code=307)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, principal: DashboardUserDep, job_id: str) -> Response:
    return _page(request, "job.html", principal, page="job", title="Job", job_id=job_id)


@router.get("/submit", response_class=HTMLResponse)
def submit_page(
    request: Request,
    principal: DashboardUserDep,
    from_job: Annotated[str | None, Query(alias="from", max_length=100)] = None,
) -> Response:
    """The training job form; `?from=JOB_ID` prefills it from that job (re-run / clone)."""
    return _page(
        request, "submit.html", principal, page="submit", title="New job", from_job=from_job
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, principal: DashboardUserDep, ids: Annotated[str, Query(max_length=1000)] = ""
) -> Response:
    job_ids = [part.strip() for part in ids.split(",") if part.strip()]
    return _page(
        request, "compare.html", principal, page="compare", title="Compare", job_ids=job_ids
    )


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(request: Request, principal: DashboardUserDep, sweep_id: str) -> Response:
    return _page(request, "sweep.html", principal, page="sweep", title="Sweep", sweep_id=sweep_id)


# The list pages, by path: each shows <page>.html, titled with the page's name.
LIST_PAGES = {
    "": "jobs",
    "/sweeps": "sweeps",
    "/models": "models",
    "/datasets": "datasets",
    "/queue": "queue",
    "/workers": "workers",
}


def list_page(page: str) -> Callable[..., Response]:
    def show(request: Request, principal: DashboardUserDep) -> Response:
        return _page(request, f"{page}.html", principal, page=page, title=page.capitalize())

    return show


for list_path, list_name in LIST_PAGES.items():
    router.add_api_route(
        list_path,
        list_page(list_name),
        methods=["GET"],
        response_class=HTMLResponse,
        name=f"{list_name}_page",
    )
