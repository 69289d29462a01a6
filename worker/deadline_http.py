"""An httpx transport with one wall-clock deadline over a whole request: connecting, TLS,
sending and every read of the answer. httpx's own timeouts bound each operation, so a peer
that sends one byte every few seconds never trips them; here each operation's timeout is cut
to what is left of the deadline, and an operation started after it fails at once (as
httpx.ConnectTimeout, WriteTimeout or ReadTimeout). Built on httpcore's pluggable network
backend: the sockets are httpcore's own, only the timeouts are tightened."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore import NetworkBackend, NetworkStream

SocketOption = Any  # httpcore's SOCKET_OPTION tuples, passed through untouched


class Deadline:
    """A point on the monotonic clock; `left` cuts a timeout to what remains before it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self, timeout: float | None, expired: type[Exception]) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise expired("the delivery's deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(NetworkStream):
    def __init__(self, inner: NetworkStream, deadline: Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, self._deadline.left(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(NetworkBackend):
    def __init__(self, deadline: Deadline) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            self._deadline.left(timeout, httpcore.ConnectTimeout),
            local_address,
            socket_options,
        )
        return DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used here")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """One request's transport (no proxies, no keep-alive): every socket operation of it
    ends by `deadline`."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=1,
            max_keepalive_connections=0,
            network_backend=DeadlineBackend(deadline),
        )
