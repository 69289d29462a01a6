"""Incomplete request headers are timed out (slowloris): raw sockets to a real uvicorn on
127.0.0.1, started the way `tass api` starts it."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.processes import api_on_protocol

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 1.0
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: never complete


@pytest.fixture(scope="module", params=["HeaderTimeoutProtocol", "HeaderTimeoutH11"])
def server(request, tmp_path_factory) -> Iterator[tuple[str, int]]:
    """The API as `tass api` runs it (httptools), and on uvicorn's pure-Python h11 protocol."""
    timeout = {"TASS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    with api_on_protocol(tmp_path_factory.mktemp("header-timeout"), request.param, timeout) as at:
        yield at


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received, time.monotonic() - start


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and its Content-Length body) from a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_incomplete_headers_get_408_and_the_connection_closes(server):
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(PARTIAL)
        received, waited = read_until_closed(sock, limit=HEADER_TIMEOUT + 10)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT * 0.5 <= waited <= HEADER_TIMEOUT + 5


def test_a_slow_drip_of_header_bytes_does_not_extend_the_deadline(server):
    """One byte every 0.1 s: each arrives well inside any idle timeout, the headers never do."""
    with socket.create_connection(server, timeout=5) as sock:
        start, answer = time.monotonic(), None
        for byte in PARTIAL * 10:
            sock.sendall(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                answer = sock.recv(4096)
                break
        waited = time.monotonic() - start
    assert answer is not None, "still open after the whole drip"
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert waited <= HEADER_TIMEOUT + 5


def test_complete_requests_on_a_kept_alive_connection_are_served(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(server, timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request)
            response = read_response(sock)
            assert response.startswith(b"HTTP/1.1 200 "), response
            assert b"x-content-type-options: nosniff" in response.lower()
            time.sleep(HEADER_TIMEOUT * 0.6)  # twice that in total: each request re-arms it
