"""The serving process's HTTP app (loopback only): `POST /predict` for the API, `GET /healthz`.
Run it with `tass serve` (uvicorn `serving.app:create_app --factory`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import warnings
from typing import Annotated

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tass.core.objectstore import ObjectStore
from tass.core.settings import Settings, get_settings
from tass.serving.images import BadImage, check_uploads, to_inputs
from tass.serving.warm import (
    ModelCache,
    ModelFile,
    ModelLoadError,
    WarmModel,
    load_checked,
    traced_forward,
)

log = logging.getLogger(__name__)


class ImageIn(BaseModel):
    name: str = Field(max_length=1000)
    data: str = Field(description="The file's bytes, base64.")


class PredictIn(BaseModel):
    model_id: str
    key: str
    sha256: str
    class_names: list[str] | None = None
    top_k: Annotated[int | None, Field(ge=1)] = None
    images: list[ImageIn]


def predictions(
    probs: np.ndarray, class_names: list[str], top_k: int | None
) -> list[dict[str, object]]:
    """One entry per image: the top label, its index, and {label: p} (the top_k largest)."""
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[: top_k or len(row)]
        best = int(order[0])
        out.append(
            {
                "label": class_names[best],
                "index": best,
                "probabilities": {class_names[int(i)]: float(row[int(i)]) for i in order},
            }
        )
    return out


def _decode_uploads(body: PredictIn) -> list[tuple[str, bytes]]:
    uploads = []
    for index, image in enumerate(body.images):
        try:
            uploads.append((image.name, base64.b64decode(image.data, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise BadImage(index, image.name, "not valid base64") from exc
    return uploads


def bad_image(exc: BadImage) -> JSONResponse:
    """The API turns this into a 422 naming the upload."""
    return JSONResponse({"index": exc.index, "name": exc.name, "detail": str(exc)}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # exported models take their one input as a list; a bare batch is what we mean
    warnings.filterwarnings("ignore", message="The structure of `inputs`", category=UserWarning)
    app = FastAPI(title="tass serving", docs_url=None, redoc_url=None, openapi_url=None)
    store: list[ObjectStore] = []  # made on first use: building the app does no I/O

    def load(file: ModelFile) -> WarmModel:
        if not store:
            store.append(ObjectStore(settings.resolved_artifact_url))
        model, class_names = load_checked(store[0], file)
        try:  # an image classifier: [batch, height, width, channels] in, class scores out
            outputs = int(model.output_shape[-1])
            warm = WarmModel(model=model, class_names=[], runner=traced_forward(model))
            warm.input_size  # noqa: B018 - refuses other input shapes now, not per request
        except Exception as exc:
            raise ModelLoadError(f"model {file.model_id}: not an image classifier ({exc})") from exc
        warm.class_names = class_names or [str(i) for i in range(outputs)]
        log.info("loaded model %s (%d classes)", file.model_id, outputs)
        return warm

    cache = ModelCache(load, settings.serve_max_models)
    app.state.cache = cache
    max_pixels = int(settings.serve_max_request_megapixels * 1_000_000)
    decode_slots = asyncio.Semaphore(settings.serve_max_decodes)  # bounds decoded memory

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "warm_models": len(cache.warm)}

    @app.post("/predict")
    async def predict(body: PredictIn) -> JSONResponse:
        file = ModelFile(model_id=body.model_id, key=body.key, sha256=body.sha256)
        try:  # headers and the pixel budget first: nothing is loaded or decoded for a refusal
            uploads = _decode_uploads(body)
            check_uploads(uploads, max_pixels)
        except BadImage as exc:
            return bad_image(exc)
        try:
            warm = await cache.get(file)
        except ModelLoadError as exc:
            log.warning("%s", exc)
            raise HTTPException(409, detail=str(exc)) from exc
        try:
            async with decode_slots:
                inputs = await asyncio.to_thread(
                    to_inputs, uploads, warm.input_size, pixels=warm.takes_pixels
                )
        except BadImage as exc:
            return bad_image(exc)
        probs = await warm.predict(inputs) if len(inputs) else np.zeros((0, 1))
        return JSONResponse(
            {
                "model_id": body.model_id,
                "predictions": predictions(probs, warm.class_names, body.top_k),
            }
        )

    return app
