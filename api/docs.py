"""/openapi.json, /docs and /redoc: open to anyone with TASS_PUBLIC_DOCS=true, otherwise behind
an API key like every /v1 endpoint (a browser logged in to the dashboard reaches them with its
session cookie)."""

from __future__ import annotations

from typing import Any, TypedDict

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from tass.api.auth import PRINCIPAL_CREDENTIALS, PrincipalDep

OPENAPI_URL = "/openapi.json"
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


def closed_docs_router(app: FastAPI) -> APIRouter:
    """The three documents as routes that need a principal."""
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_URL)
    def openapi(principal: PrincipalDep) -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def swagger(request: Request, principal: PrincipalDep) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=root + OPENAPI_URL, title=f"{app.title} - docs")

    @router.get("/redoc")
    def redoc(request: Request, principal: PrincipalDep) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(openapi_url=root + OPENAPI_URL, title=f"{app.title} - ReDoc")

    return router


class DocsUrls(TypedDict):
    """FastAPI's keyword arguments for its own document URLs (None: not served)."""

    openapi_url: str | None
    docs_url: str | None
    redoc_url: str | None


def docs_urls(public: bool) -> DocsUrls:
    """FastAPI's own (unauthenticated) document URLs, or none when they need a key."""
    if public:
        return {"openapi_url": OPENAPI_URL, "docs_url": "/docs", "redoc_url": "/redoc"}
    return {"openapi_url": None, "docs_url": None, "redoc_url": None}
