"""/v1/models: the model registry and verified, resumable model downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep, StoreDep
from tass.api.pagination import CursorQuery, PageLimit
from tass.api.presenters import model_out
from tass.api.ranges import RangeNotSatisfiable, parse_range
from tass.api.schemas import ModelOut, ModelPage
from tass.contract.artifacts import MODEL_MEDIA_TYPES, ModelFormat, download_name
from tass.core import job_queries as queries
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.models import Model
from tass.core.registry import resolve_model_ref

router = APIRouter(prefix="/v1/models", tags=["models"])


def require_model(session: Session, model_ref: str, principal: Principal) -> Model:
    """The model a reference (id, `NAME@ALIAS`, `NAME:VERSION`) names; another tenant's is
    reported as missing (404)."""
    return resolve_model_ref(session, model_ref, tenant=principal.tenant, scope=principal.scope)


@router.get("", response_model=ModelPage)
def list_models(
    session: SessionDep,
    principal: PrincipalDep,
    limit: PageLimit,
    cursor: CursorQuery = None,
) -> ModelPage:
    rows, next_cursor = queries.list_models(
        session, limit=limit, cursor=cursor, scope=principal.scope
    )
    return ModelPage(items=[model_out(m) for m in rows], next_cursor=next_cursor)


@router.get("/{model_id}", response_model=ModelOut)
def get_model(model_id: str, session: SessionDep, principal: PrincipalDep) -> ModelOut:
    return model_out(require_model(session, model_id, principal))


@router.get(
    "/{model_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, 206: {}, 304: {}, 307: {}, 416: {}},
)
def download_model(
    model_id: str,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    format: ModelFormat = ModelFormat.KERAS,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The model file, streamed with Content-Length, ETag, X-Checksum-Sha256 and Range support
    (or a redirect to a short-lived presigned URL on S3 when enabled)."""
    model_id = require_model(session, model_id, principal).id  # a reference resolves here
    artifact = queries.model_artifact(session, model_id, format)
    if artifact is None:
        raise HTTPException(404, detail=f"model {model_id} has no {format.value} file")
    etag = f'"{artifact.sha256}"'
    headers = {
        "ETag": etag,
        "X-Checksum-Sha256": artifact.sha256,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{download_name(model_id, format)}"',
    }
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    if settings.presign_downloads and store.signs_urls:
        url = store.presigned_get(artifact.key)
        if url is None:  # signs_urls said it would sign
            raise RuntimeError(f"the object store did not sign a URL for {artifact.key}")
        return RedirectResponse(url, status_code=307, headers=headers)
    size = artifact.size
    try:
        byte_range = parse_range(range_header, size) if range_header else None
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = byte_range or (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if byte_range:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        store.iter_range(artifact.key, start, end if byte_range else None),
        status_code=status,
        headers=headers,
        media_type=MODEL_MEDIA_TYPES[format],
    )
