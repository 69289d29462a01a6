"""uvicorn's HTTP protocol with a bound on the time a client takes to send request headers.

uvicorn 0.54 has no header read timeout: its only connection timer, `--timeout-keep-alive`,
starts after a response, so a client that opens a connection and sends headers slowly, or
never finishes them (slowloris), holds the connection open forever. These subclasses of
uvicorn's own protocols (`--http api.http_protocol:HeaderTimeoutProtocol`, which the `tass`
CLI passes) start a timer when a connection opens and after every response, stop it when a
request's headers are complete, and when it fires answer 408 and close the connection.
`TASS_HEADER_TIMEOUT_SECONDS` sets it (default 10). Bodies are bounded in size, not time."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tass.core.settings import get_settings

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\nconnection: close\r\n\r\nrequest headers not received in time\r\n"
)


class HeaderDeadline:
    """The timer shared by both protocol implementations."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None

    def start_connection(self, transport: Any) -> None:
        """A new connection: TCP_NODELAY, and the header timer. asyncio sets TCP_NODELAY only
        on sockets accepted from a listener made with protocol IPPROTO_TCP, which uvicorn's
        own socket for `--workers N` is not: without it a response's headers and body, two
        writes, waited for the client's delayed ACK, 40 ms each (measured: 2 processes
        answered 1,425 req/s to 64 clients, one process 2,642)."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.arm_header_deadline()

    def arm_header_deadline(self) -> None:
        self.disarm_header_deadline()
        seconds = get_settings().header_timeout_seconds
        self._header_timer = self.loop.call_later(seconds, self.header_deadline_passed)

    def disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def header_deadline_passed(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


class HeaderTimeoutH11(HeaderDeadline, H11Protocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.start_connection(transport)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request line and headers arrived
            self.disarm_header_deadline()

    def on_response_complete(self) -> None:
        self.arm_header_deadline()  # super() disarms it again if a pipelined request is ready
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_header_deadline()
        super().connection_lost(exc)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without httptools: its "auto" choice is h11 too
    HeaderTimeoutProtocol: type[asyncio.Protocol] = HeaderTimeoutH11
else:

    class HeaderTimeoutHttpTools(HeaderDeadline, HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.start_connection(transport)

        def on_headers_complete(self) -> None:
            self.disarm_header_deadline()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            if not self.pipeline:  # a pipelined request's headers are already complete
                self.arm_header_deadline()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm_header_deadline()
            super().connection_lost(exc)

    HeaderTimeoutProtocol = HeaderTimeoutHttpTools
