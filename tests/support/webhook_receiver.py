"""A webhook receiver on loopback for tests: answers each POST with the next scripted status
(or stalls past the sender's timeout), records what arrived, and verifies signatures with the
standardwebhooks library, as a receiving team would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL = "stall"  # scripted answer: hold the request past the sender's timeout, then 200


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | str


@dataclass
class Receiver:
    url: str
    script: list[int | str]
    stall_seconds: float
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver(
    script: list[int | str], *, host: str = "127.0.0.1", stall_seconds: float = 3.0
) -> Iterator[Receiver]:
    """Serve on host (loopback) at a free port until the block ends; after the script runs
    out every request gets 200."""
    receiver = Receiver(url="", script=list(script), stall_seconds=stall_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                answer = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append(Received(dict(self.headers.items()), body, answer))
            if answer == STALL:
                time.sleep(receiver.stall_seconds)
                answer = 200
            self.send_response(int(answer))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://{host}:{server.server_address[1]}/hooks/tass"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
