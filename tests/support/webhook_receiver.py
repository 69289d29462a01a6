"""A webhook receiver on loopback for tests: answers each POST with the next scripted status
(or stalls past the sender's timeout, or trickles its answer's headers one byte at a time
until the receiver closes), records what arrived, and verifies signatures with the
standardwebhooks library, as a receiving team would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL = "stall"  # scripted answer: hold the request past the sender's timeout, then 200
# scripted answer: a status line and header lines sent one byte every trickle_seconds, never
# ending (each byte arrives well within any per-read timeout) until the receiver closes
TRICKLE = "trickle"


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
    trickle_seconds: float = 0.5
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    trickling: int = 0  # answers being trickled now
    closed: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver(
    script: list[int | str],
    *,
    host: str = "127.0.0.1",
    stall_seconds: float = 3.0,
    trickle_seconds: float = 0.5,
    then: int | str = 200,
) -> Iterator[Receiver]:
    """Serve on host (loopback) at a free port until the block ends; after the script runs
    out every request gets `then`."""
    receiver = Receiver(
        url="", script=list(script), stall_seconds=stall_seconds, trickle_seconds=trickle_seconds
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                answer = receiver.script.pop(0) if receiver.script else then
                receiver.received.append(Received(dict(self.headers.items()), body, answer))
            if answer == TRICKLE:
                self.trickle()
                return
            if answer == STALL:
                time.sleep(receiver.stall_seconds)
                answer = 200
            self.send_response(int(answer))
            self.send_header("content-length", "0")
            self.end_headers()

        def trickle(self) -> None:
            self.close_connection = True
            with receiver.lock:
                receiver.trickling += 1
            try:
                for byte in trickled_answer():
                    if receiver.closed.wait(receiver.trickle_seconds):
                        return
                    self.wfile.write(byte)
            except OSError:
                return  # the sender hung up
            finally:
                with receiver.lock:
                    receiver.trickling -= 1

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
        receiver.closed.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def trickled_answer() -> Iterator[bytes]:
    """`HTTP/1.1 200 OK` and then header lines, one byte at a time, without end."""
    yield from (bytes([b]) for b in b"HTTP/1.1 200 OK\r\n")
    while True:
        yield from (bytes([b]) for b in b"x-slow: 1\r\n")
