"""The API's HTTP protocol sets TCP_NODELAY itself: `tass api --workers N` serves from a
listening socket uvicorn made without IPPROTO_TCP, whose connections asyncio leaves with
Nagle on (each response then waited 40 ms for the client's delayed ACK)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from tass.api.http_protocol import HeaderTimeoutProtocol


class FakeTransport(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


def test_connections_from_a_listener_made_without_ipproto_tcp_get_tcp_nodelay():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # as uvicorn's --workers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        protocol = HeaderTimeoutProtocol.__new__(HeaderTimeoutProtocol)
        protocol.loop = asyncio.new_event_loop()
        try:
            protocol.start_connection(FakeTransport(accepted))  # type: ignore[attr-defined]
        finally:
            protocol.loop.close()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for sock in (accepted, client, listener):
            sock.close()
