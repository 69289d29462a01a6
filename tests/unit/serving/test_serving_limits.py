"""The serving process's memory bounds: decoded pixels per request, checked from the images'
headers before any model is loaded or image decoded, and requests decoding at once."""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import time
import zlib

import httpx
import numpy as np

from tass.core.settings import Settings
from tass.serving import app as serving_app
from tass.serving.warm import WarmModel
from tests.unit.serving.test_warm import CountingModel

SHA = "0" * 64


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG of width x height RGB pixels (its header is all that is read)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def request(images: list[bytes], model_id: str = "m") -> dict:
    return {
        "model_id": model_id,
        "key": f"models/{model_id}/model.keras",
        "sha256": SHA,
        "images": [
            {"name": f"img{i}", "data": base64.b64encode(raw).decode()}
            for i, raw in enumerate(images)
        ],
    }


async def post_all(app, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
        return await asyncio.gather(*(client.post("/predict", json=body) for body in bodies))


def test_a_request_over_the_pixel_budget_is_refused_before_loading_or_decoding(tmp_path):
    settings = Settings(data_dir=tmp_path, serve_max_request_megapixels=1)
    app = serving_app.create_app(settings)
    # 0.64 megapixels each: the second passes the budget. The model does not exist: a load
    # would answer 409, so a 422 says the images were refused first.
    (refused,) = asyncio.run(post_all(app, [request([png_header(800, 800)] * 2)]))
    assert refused.status_code == 422, refused.text
    assert refused.json()["index"] == 1
    assert "megapixels" in refused.json()["detail"]
    (within,) = asyncio.run(post_all(app, [request([png_header(800, 800)])]))
    assert within.status_code == 409, "within the budget: on to loading the (missing) model"


def test_decodes_in_flight_are_capped(tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path, serve_max_decodes=1)
    app = serving_app.create_app(settings)
    app.state.cache.warm[f"m:{SHA}"] = WarmModel(model=CountingModel(), class_names=["a", "b"])
    decoding, most_at_once = 0, 0
    lock = threading.Lock()

    def slow_inputs(uploads, size, pixels=False):
        nonlocal decoding, most_at_once
        with lock:
            decoding += 1
            most_at_once = max(most_at_once, decoding)
        time.sleep(0.2)
        with lock:
            decoding -= 1
        return np.zeros((len(uploads), *size), np.float32)

    monkeypatch.setattr(serving_app, "to_inputs", slow_inputs)
    answers = asyncio.run(post_all(app, [request([png_header(2, 2)]) for _ in range(4)]))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert most_at_once == 1
