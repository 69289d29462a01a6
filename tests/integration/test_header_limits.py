"""Oversize request headers are refused with 431 before the server buffers them: raw sockets
to a real uvicorn on 127.0.0.1, started the way `tass api` starts it (httptools), and on
uvicorn's pure-Python h11 protocol."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.integration.test_header_timeout import read_response
from tests.support.processes import api_on_protocol

pytestmark = pytest.mark.integration

MAX_HEADER_BYTES = 8192
MAX_HEADER_COUNT = 20


@pytest.fixture(scope="module", params=["HeaderTimeoutProtocol", "HeaderTimeoutH11"])
def server(request, tmp_path_factory) -> Iterator[tuple[str, int]]:
    limits = {
        "TASS_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "TASS_MAX_HEADER_COUNT": str(MAX_HEADER_COUNT),
    }
    with api_on_protocol(tmp_path_factory.mktemp("header-limits"), request.param, limits) as at:
        yield at


def send_until_refused(server: tuple[str, int], request: bytes) -> bytes:
    """Sends `request` in 16 KiB pieces (stopping if the server closes first) and returns
    everything the server answers until it closes."""
    with socket.create_connection(server, timeout=10) as sock:
        try:
            for start in range(0, len(request), 16384):
                sock.sendall(request[start : start + 16384])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the rest was sent
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def healthz(*headers: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(headers) + b"\r\n"


@pytest.mark.parametrize("size", [100 * 1024, 10 * 1024 * 1024])
def test_an_oversize_header_is_431(server, size):
    answer = send_until_refused(server, healthz(b"X-Big: " + b"a" * size + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_oversize_headers_in_many_small_lines_are_431(server):
    lines = [b"X-Part-%d: %s\r\n" % (i, b"b" * 500) for i in range(MAX_HEADER_BYTES // 500 + 2)]
    answer = send_until_refused(server, healthz(*lines[: MAX_HEADER_BYTES // 600]))
    assert answer.startswith(b"HTTP/1.1 200 "), "under both limits"
    answer = send_until_refused(server, healthz(*lines))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_too_many_headers_are_431(server):
    few = [b"X-N%d: 1\r\n" % i for i in range(MAX_HEADER_COUNT - 1)]  # with Host: the limit
    assert send_until_refused(server, healthz(*few)).startswith(b"HTTP/1.1 200 ")
    many = [b"X-N%d: 1\r\n" % i for i in range(MAX_HEADER_COUNT + 1)]
    assert send_until_refused(server, healthz(*many)).startswith(b"HTTP/1.1 431 ")


def test_bodies_and_kept_alive_requests_are_not_counted_as_headers(server):
    """A body larger than the header limit, sent with its headers in one write, and requests
    whose headers together pass the limit on one connection, are all served."""
    body = b"{" + b" " * (4 * MAX_HEADER_BYTES) + b"}"
    post = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    header = b"X-Half: " + b"c" * (MAX_HEADER_BYTES // 2) + b"\r\n"
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(post)
        assert read_response(sock).startswith(b"HTTP/1.1 401 "), "read as a body, not headers"
        for _ in range(3):
            sock.sendall(healthz(header))
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
