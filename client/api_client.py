"""`TassClient`: one method per API endpoint, JSON dicts in and out, errors as `TassError`s."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from tass.client.credentials import key_for
from tass.client.errors import ApiError, ServerUnreachable, TassError
from tass.client.sse import ServerSentEvent, iter_sse

# kept importable from here for scripts written against earlier READMEs
from tass.contract.statuses import FINAL_STATUSES as FINAL_STATUSES

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "TASS_URL"
API_KEY_ENV = "TASS_API_KEY"


Json = dict[str, Any]


def normalize_url(url: str) -> str:
    """`host:port` becomes `http://host:port`; a trailing slash is dropped."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def _segment(value: str) -> str:
    """A path segment, escaped so an id can never change the path: `/`, `?`, `#` and `%` are
    percent-encoded, and so are the dots of `.` and `..` (URL resolution would drop them and
    climb a level). An empty id is refused (it would name the collection)."""
    if not value:
        raise TassError("an id can't be empty")
    escaped = quote(value, safe="")
    return escaped.replace(".", "%2E") if escaped in {".", ".."} else escaped


def _path(*segments: str) -> str:
    """`/v1/<segment>/...` from ids, each escaped by `_segment` (the fixed words too: harmless)."""
    return "/v1/" + "/".join(_segment(part) for part in segments)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


class TassClient:
    """A synchronous client for the tass API.

    `base_url` defaults to $TASS_URL, then http://127.0.0.1:8000; `api_key` to $TASS_API_KEY,
    then the key stored for that URL by `tass up` (sent as `Authorization: Bearer ...`).
    `transport` lets tests plug in an `httpx.MockTransport`. Use as a context manager, or
    call `close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = normalize_url(base_url or os.environ.get(URL_ENV) or DEFAULT_URL)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if key is None:
            key = key_for(self.base_url)
        headers = {"Accept": "application/json", "User-Agent": "tass-client"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TassClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Any = None,
    ) -> httpx.Response:
        """Send one request; raise `ServerUnreachable` or `ApiError` instead of returning errors."""
        try:
            response = self._http.request(
                method, path, params=_params(params or {}), json=json, files=files
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, exc) from exc
        if response.is_error:
            raise ApiError.from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        response = self.request(method, path, **kwargs)
        try:
            payload = response.json()
        except ValueError as exc:
            raise TassError(
                f"{method} {path}: expected JSON from the server, got {response.text[:200]!r}"
            ) from exc
        if not isinstance(payload, dict):
            raise TassError(f"{method} {path}: expected a JSON object, got {payload!r:.200}")
        return payload

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        read_timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed response whose status is already checked (errors raise as in `request`).

        `read_timeout=None` waits forever between chunks (event streams go quiet for long).
        Errors while reading the body are the caller's to handle (`httpx.HTTPError`).
        """
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        try:
            with self._http.stream(
                method,
                path,
                params=_params(params or {}),
                headers=headers,
                follow_redirects=follow_redirects,
                timeout=timeout,
            ) as response:
                if response.is_error:
                    raise ApiError.from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, exc) from exc

    # -- endpoints ------------------------------------------------------------------------------

    def health(self) -> Json:
        """GET /healthz."""
        return self._json("GET", "/healthz")

    def submit_job(self, body: Mapping[str, Any]) -> Json:
        """POST /v1/jobs with a `{"type": "train" | "evaluate", ...}` body; returns the Job."""
        return self._json("POST", "/v1/jobs", json=dict(body))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Json:
        """One page `{"items": [Job...], "next_cursor": ...}`, newest first."""
        params = {"status": status, "type": type, "limit": limit, "cursor": cursor}
        return self._json("GET", "/v1/jobs", params=params)

    def get_job(self, job_id: str) -> Json:
        return self._json("GET", _path("jobs", job_id))

    def cancel_job(self, job_id: str) -> Json:
        """Request cancellation; the API answers 409 (an ApiError) for a job already final."""
        return self._json("POST", _path("jobs", job_id, "cancel"))

    def job_metrics(
        self,
        job_id: str,
        *,
        kind: str = "epoch",
        limit: int | None = None,
        cursor: str | None = None,
        every: int | None = None,
    ) -> Json:
        """One page of metric rows `{"kind", "step", "values"}`, ascending."""
        params = {"kind": kind, "limit": limit, "cursor": cursor, "every": every}
        return self._json("GET", _path("jobs", job_id, "metrics"), params=params)

    def job_logs(
        self,
        job_id: str,
        *,
        offset: int | None = None,
        attempt: int | None = None,
        tail: int | None = None,
        follow: bool = False,
        wait: float | None = None,
    ) -> Json:
        """One page of log lines `{"items": [{"offset", "at", "attempt", "stream", "line"}],
        "next_offset", "finished"}`; `follow` long-polls up to `wait` seconds for new lines."""
        params: dict[str, Any] = {"offset": offset, "attempt": attempt, "tail": tail}
        params["wait"] = wait
        if follow:
            params["follow"] = "true"
        return self._json("GET", f"/v1/jobs/{_segment(job_id)}/logs", params=params)

    def iter_events(
        self, job_id: str, *, last_event_id: str | None = None
    ) -> Iterator[ServerSentEvent]:
        """The job's server-sent events (`status`, `progress`, `metrics`) until the server ends
        the stream, resuming after `last_event_id` when given (sent as `Last-Event-ID`); a
        connection dropped mid-stream raises `ServerUnreachable`."""
        path = _path("jobs", job_id, "events")
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        with self.stream("GET", path, headers=headers) as response:
            try:
                yield from iter_sse(response.iter_lines())
            except httpx.TransportError as exc:
                raise ServerUnreachable(self.base_url, exc) from exc

    def list_models(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        return self._json("GET", "/v1/models", params={"limit": limit, "cursor": cursor})

    def get_model(self, model_id: str) -> Json:
        return self._json("GET", _path("models", model_id))

    def download_path(self, model_id: str) -> str:
        return _path("models", model_id, "download")

    def upload_dataset(
        self, name: str, chunks: Iterable[bytes], *, size: int, content_type: str
    ) -> Json:
        """POST /v1/datasets: stream an archive (`chunks`, `size` bytes in all) as the body;
        returns the dataset, `validating` until a worker has checked it."""
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        try:
            response = self._http.post(
                "/v1/datasets", params={"name": name}, content=chunks, headers=headers
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, exc) from exc
        if response.is_error:
            raise ApiError.from_response(response)
        return response.json()

    def list_datasets(self, *, status: str | None = None, limit: int | None = None) -> Json:
        return self._json("GET", "/v1/datasets", params={"status": status, "limit": limit})

    def get_dataset(self, dataset_id: str) -> Json:
        return self._json("GET", _path("datasets", dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        self.request("DELETE", _path("datasets", dataset_id))

    def predict(self, model_id: str, files: Any, *, top_k: int | None = None) -> Json:
        """POST /v1/models/{id}/predict with `files` as multipart `files` parts."""
        return self._json(
            "POST", _path("models", model_id, "predict"), params={"top_k": top_k}, files=files
        )

    # sweeps

    # scheduling: the waiting queue, pools, tenants' settings, draining workers

    def queue(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of waiting jobs in scheduling order, with position and reason."""
        return self._json("GET", "/v1/queue", params={"limit": limit, "cursor": cursor})

    def pools(self) -> Json:
        """Each pool's live workers, devices free and used, and jobs waiting for it."""
        return self._json("GET", "/v1/pools")

    def get_tenant(self, tenant: str) -> Json:
        return self._json("GET", _path("tenants", tenant))

    def set_tenant(self, tenant: str, settings: Mapping[str, Any]) -> Json:
        """PUT /v1/tenants/{tenant} (admin): weight, max_priority, gpu_quota."""
        return self._json("PUT", _path("tenants", tenant), json=dict(settings))

    def list_workers(self) -> Json:
        return self._json("GET", "/v1/workers")

    def drain_worker(self, name: str, *, preempt: bool = False) -> Json:
        """No new placements on the worker (admin); `preempt`: its train jobs move."""
        params = {"preempt": "true"} if preempt else {}
        return self._json("POST", _path("workers", name, "drain"), params=params)

    def undrain_worker(self, name: str) -> Json:
        return self._json("POST", _path("workers", name, "undrain"))

    def create_sweep(self, body: Mapping[str, Any]) -> Json:
        return self._json("POST", "/v1/sweeps", json=dict(body))

    def list_sweeps(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        return self._json("GET", "/v1/sweeps", params={"limit": limit, "cursor": cursor})

    def get_sweep(self, sweep_id: str) -> Json:
        return self._json("GET", _path("sweeps", sweep_id))

    def cancel_sweep(self, sweep_id: str) -> Json:
        return self._json("POST", _path("sweeps", sweep_id, "cancel"))

    # webhooks

    def create_webhook(self, body: Mapping[str, Any]) -> Json:
        """POST /v1/webhooks; the answer holds the signing secret (shown this once)."""
        return self._json("POST", "/v1/webhooks", json=dict(body))

    def list_webhooks(self, *, limit: int | None = None) -> Json:
        return self._json("GET", "/v1/webhooks", params={"limit": limit})

    def webhook_deliveries(
        self, webhook_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Json:
        params = {"limit": limit, "cursor": cursor}
        return self._json("GET", _path("webhooks", webhook_id, "deliveries"), params=params)

    def delete_webhook(self, webhook_id: str) -> None:
        self.request("DELETE", _path("webhooks", webhook_id))

    # the model registry

    def list_registry(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        return self._json("GET", "/v1/registry", params={"limit": limit, "cursor": cursor})

    def get_registered(self, name: str) -> Json:
        return self._json("GET", _path("registry", name))

    def update_registered(self, name: str, update: Mapping[str, Any]) -> Json:
        return self._json("PATCH", _path("registry", name), json=dict(update))

    def register_version(self, name: str, model_id: str) -> Json:
        return self._json("POST", _path("registry", name, "versions"), json={"model_id": model_id})

    def delete_version(self, name: str, version: int) -> None:
        self.request("DELETE", _path("registry", name, "versions", str(version)))

    def set_alias(self, name: str, alias: str, version: int) -> Json:
        return self._json(
            "PUT", _path("registry", name, "aliases", alias), json={"version": version}
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self.request("DELETE", _path("registry", name, "aliases", alias))
