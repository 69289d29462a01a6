"""/openapi.json, /docs and /redoc: open to anyone with TASS_PUBLIC_DOCS=true, otherwise behind
an API key like every /v1 endpoint (a browser logged in to the dashboard reaches them with its
session cookie).

The two pages load Swagger UI and ReDoc from this service, never from a CDN: they work offline,
and no third party's script runs in the service's origin. The files come from the
`fastapi-offline` package (Swagger UI's and ReDoc's minified bundles), served with the start-up
script of our own (api/docs_static/) at /docs/static. The pages have no inline script, and
answer with a Content-Security-Policy that allows scripts from this origin only, fetches to it
only, and no framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`)."""

from __future__ import annotations

import importlib.util
import logging
from html import escape
from pathlib import Path
from typing import Any, TypedDict

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from tass.api.auth import PRINCIPAL_CREDENTIALS, PrincipalDep, current_principal

log = logging.getLogger(__name__)
OPENAPI_URL = "/openapi.json"
DOCS_STATIC_URL = "/docs/static"
DOCS_STATIC_DIR = Path(__file__).resolve().parent / "docs_static"
ASSETS_PACKAGE = ("fastapi_offline", "static")  # swagger-ui-bundle.js, swagger-ui.css, redoc...
# Swagger UI and ReDoc set inline styles (React, styled-components): styles may be inline,
# scripts may not; ReDoc renders in a blob: worker
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="{static}/favicon.png">
<link rel="stylesheet" href="{static}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-start.js"></script>
</body>
</html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="{static}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{static}/redoc.standalone.js"></script>
</body>
</html>
"""
V1_PREFIX = "/v1/"  # every operation below it takes a PrincipalDep (tests/api/test_auth.py)


def document_principal_credentials(app: FastAPI) -> None:
    """The OpenAPI document declares, on every /v1 operation, the credentials PrincipalDep
    accepts (a bearer key or the dashboard's session cookie), as FastAPI would for security
    sub-dependencies: PrincipalDep reads them itself, which FastAPI cannot see, to spare
    each request solving them (FastAPI's documented way to extend the document)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for credential in PRINCIPAL_CREDENTIALS:
            schemes[credential.scheme_name] = jsonable_encoder(
                credential.model, by_alias=True, exclude_none=True
            )
        either: list[dict[str, list[str]]] = [
            {credential.scheme_name: []} for credential in PRINCIPAL_CREDENTIALS
        ]
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(V1_PREFIX):
                for operation in operations.values():
                    operation["security"] = either
        return schema  # FastAPI keeps it as app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents overriding it


def docs_assets() -> StaticFiles:
    """Swagger UI's and ReDoc's files (from the package) and our start-up script. Without the
    package (an install that predates it) the API still starts, its two pages without assets."""
    if importlib.util.find_spec(ASSETS_PACKAGE[0]) is None:
        log.warning("fastapi-offline is not installed: /docs and /redoc cannot load their assets")
        return StaticFiles(directory=DOCS_STATIC_DIR)
    return StaticFiles(directory=DOCS_STATIC_DIR, packages=[ASSETS_PACKAGE])


def _page(template: str, request: Request, title: str) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    static, openapi = escape(root + DOCS_STATIC_URL), escape(root + OPENAPI_URL)
    html = template.format(title=escape(title), static=static, openapi=openapi)
    return HTMLResponse(html, headers=DOCS_HEADERS)


def docs_router(app: FastAPI, public: bool) -> APIRouter:
    """/docs and /redoc (and /openapi.json unless public: FastAPI serves it then), behind a
    principal unless the documents are public. Their assets are mounted apart (`docs_assets`):
    they are the same open-source files for everyone."""
    guard = [] if public else [Depends(current_principal)]
    router = APIRouter(include_in_schema=False, dependencies=guard)

    if not public:

        @router.get(OPENAPI_URL)
        def openapi(principal: PrincipalDep) -> JSONResponse:
            return JSONResponse(app.openapi())

    @router.get("/docs")
    def swagger(request: Request) -> HTMLResponse:
        return _page(SWAGGER_PAGE, request, f"{app.title} - docs")

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        return _page(REDOC_PAGE, request, f"{app.title} - ReDoc")

    return router


class DocsUrls(TypedDict):
    """FastAPI's keyword arguments for its own document URLs (None: not served)."""

    openapi_url: str | None
    docs_url: str | None
    redoc_url: str | None


def docs_urls(public: bool) -> DocsUrls:
    """FastAPI's own document URLs: its /openapi.json when the documents are public, never
    its /docs and /redoc (they load their scripts from a CDN: `docs_router` serves ours)."""
    return {"openapi_url": OPENAPI_URL if public else None, "docs_url": None, "redoc_url": None}
