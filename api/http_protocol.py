"""uvicorn's HTTP protocol with a bound on the time a client takes to send request headers.

uvicorn 0.54 has no header read timeout: its only connection timer, `--timeout-keep-alive`,
starts after a response, so a client that opens a connection and sends headers slowly, or
never finishes them (slowloris), holds the connection open forever. These subclasses of
uvicorn's own protocols (`--http api.http_protocol:HeaderTimeoutProtocol`, which the `tass`
CLI passes) start a timer when a connection opens and after every response, stop it when a
request's headers are complete, and when it fires answer 408 and close the connection.
`TASS_HEADER_TIMEOUT_SECONDS` sets it (default 10).

They also bound the size of a request's headers, which neither parser does by default here
(httptools took a 10 MB header; h11 stops at 16 KiB with a 400): bytes that arrive while a
request's headers are incomplete are counted before the parser sees them, and past
`TASS_MAX_HEADER_BYTES` (request line and headers, default 32 KiB) or
`TASS_MAX_HEADER_COUNT` lines (default 100) the client gets 431 and the connection closes, so
the parser's buffers never grow past the limit plus one read. Bodies are bounded elsewhere
(api/body_limit.py, api/body_deadline.py)."""

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


def _refusal(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


HEADERS_TOO_LARGE = _refusal(
    b"431 Request Header Fields Too Large", b"request headers too large or too many\r\n"
)
HEADERS_END = (b"\r\n\r\n", b"\n\n")


def header_block_end(tail: bytes, data: bytes) -> int | None:
    """Where in `data` the header block ends (just past its blank line), given the last bytes
    received before it (`tail`), or None if it does not end in `data`."""
    joined = tail + data
    ends = [at + len(end) for end in HEADERS_END if (at := joined.find(end)) >= 0]
    return max(min(ends) - len(tail), 0) if ends else None


class HeaderDeadline:
    """The timer and the size count shared by both protocol implementations."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = _header_lines = 0
    _header_tail = b""

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
        """A request's headers are awaited: start the timer and the size count."""
        self.disarm_header_deadline()
        settings = get_settings()
        self._header_timer = self.loop.call_later(
            settings.header_timeout_seconds, self.header_deadline_passed
        )
        self._header_bytes, self._header_lines, self._header_tail = 0, 0, b""

    def disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def admit_header_bytes(self, data: bytes) -> bool:
        """Whether `data` may go to the parser: False (and 431 sent, the connection closed)
        when the headers it completes or continues are past the limits. Only bytes received
        while headers are awaited are counted (not bodies)."""
        if self._header_timer is None:
            return True
        end = header_block_end(self._header_tail, data)
        part = data if end is None else data[:end]
        self._header_bytes += len(part)
        self._header_lines += part.count(b"\n")
        self._header_tail = (self._header_tail + part)[-3:]
        settings = get_settings()
        # the request line and the blank line are lines too
        if (
            self._header_bytes <= settings.max_header_bytes
            and self._header_lines <= settings.max_header_count + 2
        ):
            return True
        self.disarm_header_deadline()
        if not self.transport.is_closing():
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()
        return False

    def header_deadline_passed(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


class HeaderTimeoutH11(HeaderDeadline, H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # h11's own cap (16 KiB, a 400) at ours: admit_header_bytes answers 431 first
        limit = get_settings().max_header_bytes
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limit)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.start_connection(transport)

    def data_received(self, data: bytes) -> None:
        if self.admit_header_bytes(data):
            super().data_received(data)

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

        def data_received(self, data: bytes) -> None:
            if self.admit_header_bytes(data):
                super().data_received(data)

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
