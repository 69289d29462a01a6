"""Helpers for the client tests: a scripted fake API behind httpx.MockTransport, job factories."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE_URL = "http://tass.test"

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """Routes `(METHOD, path)` to handlers and records every request it receives."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def route(self, method: str, path: str, handler: Handler | httpx.Response) -> None:
        if isinstance(handler, httpx.Response):
            response = handler
            self.routes[(method, path)] = lambda _request: response
        else:
            self.routes[(method, path)] = handler

    def sequence(self, method: str, path: str, responses: list[httpx.Response]) -> None:
        """Answer with each response in turn, repeating the last one."""
        remaining: Iterator[httpx.Response] = iter(responses)
        last = responses[-1]
        self.routes[(method, path)] = lambda _request: next(remaining, last)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if request.url.host != "tass.test":
            key = (request.method, str(request.url.copy_with(query=None)))
        handler = self.routes.get(key)
        if handler is None:
            return httpx.Response(404, json={"detail": f"no route {key}"})
        return handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == method and r.url.path == path and r.content
        ]


def make_job(**overrides: Any) -> dict[str, Any]:
    """A Job as GET /v1/jobs/{id} returns it."""
    job: dict[str, Any] = {
        "id": "job-1",
        "type": "train",
        "name": None,
        "status": "queued",
        "attempt": 1,
        "created_at": "2025-01-01T10:00:00Z",
        "started_at": None,
        "finished_at": None,
        "spec": {},
        "dataset": {"source": "synthetic"},
        "tags": {},
        "model_id": None,
        "progress": None,
        "metrics": {},
        "result": None,
        "error": None,
        "transitions": [],
    }
    job.update(overrides)
    return job


def running(epoch: int, step: int, **metrics: float) -> dict[str, Any]:
    """A running job at `epoch` (of 3) and `step` (of 10)."""
    return make_job(
        status="running",
        progress={
            "epoch": epoch,
            "epochs": 3,
            "step": step,
            "steps_per_epoch": 10,
            "images_per_sec": 1234.5,
            "eta_seconds": 42,
        },
        metrics=metrics,
    )


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    """An event-stream body."""
    return b"".join(
        f"event: {name}\r\ndata: {json.dumps(data)}\r\n\r\n".encode() for name, data in events
    )
