"""POST /v1/models/{ref}/predict: the API resolves the reference and the model's file, reads
the images, and forwards them to the serving process (the API never loads a model)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from tass.api.auth import PrincipalDep
from tass.api.deps import SettingsDep, open_session, reads_only
from tass.api.errors import invalid
from tass.api.routers.models import require_model
from tass.api.strict_json import StrictJSONRoute
from tass.contract.artifacts import ModelFormat
from tass.core import job_queries as queries
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=StrictJSONRoute)
log = logging.getLogger(__name__)


class PredictionOut(BaseModel):
    label: str
    index: int
    probabilities: dict[str, float]


class PredictOut(BaseModel):
    model_id: str
    predictions: list[PredictionOut]


class InstancesIn(BaseModel):
    instances: list[str] = Field(min_length=1, description="Base64 PNG or JPEG images.")


REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
                "required": ["files"],
            }
        },
        "application/json": {"schema": InstancesIn.model_json_schema()},
    },
}


def _model_file(session: Session, ref: str, principal: Principal) -> dict[str, Any]:
    model = require_model(session, ref, principal)
    artifact = queries.model_artifact(session, model.id, ModelFormat.KERAS)
    if artifact is None:
        raise HTTPException(404, detail=f"model {model.id} has no keras file")
    return {
        "model_id": model.id,
        "key": artifact.key,
        "sha256": artifact.sha256,
        "class_names": model.class_names,
    }


async def _uploads(request: Request, settings: Settings) -> tuple[str, list[tuple[str, bytes]]]:
    """(the body field holding the images, [(name, bytes)]) from multipart `files` or JSON
    `instances`; 422 naming the field for anything else."""
    limit = settings.max_predict_images
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=limit + 1, max_fields=limit + 1)
        fields = form.getlist("files")
        files = [f for f in fields if isinstance(f, UploadFile)]
        if not files or len(files) != len(fields):
            raise invalid(["body", "files"], "files: send one or more image files as `files`")
        if len(files) > limit:
            raise invalid(["body", "files"], f"files: at most {limit} images per request")
        return "files", [(f.filename or f"files[{i}]", await f.read()) for i, f in enumerate(files)]
    try:  # request.json() on StrictJSONRoute refuses NaN and lone surrogates with a 422
        raw = await request.json()
    except ValueError as exc:  # not JSON, or not UTF-8
        raise invalid(["body"], "body: send multipart `files` or JSON `instances`") from exc
    try:
        body = InstancesIn.model_validate(raw)
    except ValidationError as exc:
        raise invalid(["body", "instances"], f"instances: {exc.errors()[0]['msg']}") from exc
    if len(body.instances) > limit:
        raise invalid(["body", "instances"], f"instances: at most {limit} images per request")
    decoded = []
    for index, text in enumerate(body.instances):
        try:
            decoded.append((f"instances[{index}]", base64.b64decode(text, validate=True)))
        except ValueError as exc:
            raise invalid(["body", "instances", index], f"instances[{index}]: not base64") from exc
    return "instances", decoded


class PredictionsInFlight:
    """The predictions one API process forwards at once (TASS_MAX_PREDICTIONS_IN_FLIGHT): each
    holds its images about three times over (the bytes, their base64, the JSON to the serving
    process), so past the cap a prediction is refused with 503 and Retry-After instead of
    growing the process. Counted from when its body has arrived: a slow upload holds none.
    Used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0

    @contextmanager
    def claim(self) -> Iterator[None]:
        if self.count >= self.limit:
            raise HTTPException(
                503,
                detail=f"this API process is running its {self.limit} predictions at once "
                "(TASS_MAX_PREDICTIONS_IN_FLIGHT); retry shortly",
                headers={"Retry-After": "1"},
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


def _in_flight(request: Request, settings: Settings) -> PredictionsInFlight:
    state = request.app.state
    if getattr(state, "predictions_in_flight", None) is None:
        state.predictions_in_flight = PredictionsInFlight(settings.max_predictions_in_flight)
    return state.predictions_in_flight


def _serving_client(request: Request, settings: Settings) -> httpx.AsyncClient:
    client = getattr(request.app.state, "serving_client", None)
    if client is None:
        client = httpx.AsyncClient(
            base_url=settings.serve_url, timeout=settings.serve_timeout_seconds
        )
        request.app.state.serving_client = client
    return client


@router.post(
    "/{model_id}/predict",
    response_model=PredictOut,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={
        409: {"description": "The model cannot be loaded."},
        503: {"description": "The serving process is down, or too many predictions at once."},
    },
)
@reads_only
async def predict(
    model_id: str,
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    top_k: Annotated[int | None, Query(ge=1, le=10_000, description="Keep the k best.")] = None,
) -> Any:
    """Class probabilities for PNG or JPEG images (any size: resized to the model's input):
    multipart `files`, or JSON `{"instances": ["<base64>", ...]}`."""
    # the body first, then a session: a slow upload holds no session slot (TASS_API_THREADS
    # per process) while it arrives, and the session closes before the model runs
    field, uploads = await _uploads(request, settings)
    with _in_flight(request, settings).claim():
        async with open_session(request) as session:
            file = await run_in_threadpool(_model_file, session, model_id, principal)
        return await _forward(request, settings, file, field, uploads, top_k)


async def _forward(
    request: Request,
    settings: Settings,
    file: dict[str, Any],
    field: str,
    uploads: list[tuple[str, bytes]],
    top_k: int | None,
) -> Any:
    """The serving process's answer for the images, its refusals as the API's."""
    payload = {
        **file,
        "top_k": top_k,
        "images": [{"name": n, "data": base64.b64encode(raw).decode()} for n, raw in uploads],
    }
    try:
        answer = await _serving_client(request, settings).post("/predict", json=payload)
    except httpx.HTTPError as exc:
        log.warning("serving process unavailable: %s", exc)
        raise HTTPException(
            503, detail="the serving process is unavailable", headers={"Retry-After": "5"}
        ) from exc
    if answer.status_code == 422:
        bad = answer.json()
        raise invalid(["body", field, bad["index"]], bad["detail"])
    if answer.status_code == 409:
        raise HTTPException(409, detail=answer.json()["detail"])
    if answer.status_code != 200:
        raise HTTPException(503, detail=f"the serving process answered {answer.status_code}")
    return answer.json()
