"""Everything a job's process writes, captured per attempt and shipped while it runs.

File descriptors 1 and 2 are pointed at pipes for the job's duration, so the capture holds
what Python prints, what `logging` writes and what native code (TensorFlow's C++ logging)
writes, each line stamped with its time and stream. Reader threads tee the bytes to the
worker's own stdout/stderr and hand lines, with secrets masked (worker/log_scrub.py), to a
shipper thread that stores them in chunks (core/job_logs.py) every `flush_seconds` or
`CHUNK_BYTES`: a worker that dies loses at most the last few seconds. What is kept is
bounded: at most TASS_JOB_LOG_MAX_MB of stored chunks per attempt (the oldest are dropped),
and lines that come faster than they can be stored are dropped oldest first, with a line
saying so. A worker process runs one job at a time, so the capture holds only this job's."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TextIO

from tass.core.job_logs import (
    TASS_STREAM,
    LogLine,
    drop_oldest,
    now_iso,
    store_chunk,
    stored_line_count,
)
from tass.worker.context import WorkerContext
from tass.worker.log_scrub import Scrubber

CHUNK_BYTES = 256 * 1024
MAX_LINE_BYTES = 16 * 1024
PENDING_MAX_BYTES = 8 * 1024 * 1024  # unshipped lines held while the store is slow or down
SYNC = b"\x00tass-log-sync\x00"
JOIN_SECONDS = 5.0

Ship = Callable[[list[LogLine]], int]  # stores a batch, returns the line number it starts at


class LogShipper:
    """Collects lines from the reader threads and ships them in bounded batches."""

    def __init__(self, ship: Ship, scrub: Callable[[str], str], flush_seconds: float) -> None:
        self._ship, self._scrub, self._flush_seconds = ship, scrub, flush_seconds
        self._pending: deque[tuple[LogLine, int]] = deque()
        self._pending_bytes = 0
        self._dropped = 0
        self._next_line: int | None = None
        self._lock = threading.Lock()
        self._ship_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tass-log-shipper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        text = text.rsplit("\r", 1)[-1]  # a progress bar's redraws: keep what a terminal shows
        line = LogLine(now_iso(), stream, self._scrub(text))
        size = len(raw) + 40
        with self._lock:
            self._pending.append((line, size))
            self._pending_bytes += size
            while self._pending_bytes > PENDING_MAX_BYTES:
                _, dropped_size = self._pending.popleft()
                self._pending_bytes -= dropped_size
                self._dropped += 1
            if self._pending_bytes >= CHUNK_BYTES:
                self._wake.notify()

    def note(self, text: str) -> None:
        """A line from the service itself (stream `tass`)."""
        self.add(TASS_STREAM, f"[tass] {text}".encode())

    def _take(self) -> list[LogLine]:
        with self._lock:
            batch: list[LogLine] = []
            if self._dropped:
                text = f"[tass] {self._dropped} lines were dropped: output came faster than it "
                batch.append(LogLine(now_iso(), TASS_STREAM, text + "could be stored"))
                self._dropped = 0
            size = 0
            while self._pending and size < CHUNK_BYTES:
                line, line_size = self._pending.popleft()
                self._pending_bytes -= line_size
                size += line_size
                batch.append(line)
            return batch

    def _put_back(self, batch: list[LogLine]) -> None:
        with self._lock:
            for line in reversed(batch):
                self._pending.appendleft((line, len(line.line) + 40))
                self._pending_bytes += len(line.line) + 40

    def ship_pending(self) -> bool:
        """Ship everything pending now; False if the store or the database refused."""
        with self._ship_lock:
            while batch := self._take():
                try:
                    first = self._ship(batch)
                except Exception:  # kept for the next try: the job must never fail for its log
                    self._put_back(batch)
                    return False
                self._next_line = first + len(batch)
        return True

    @property
    def next_line(self) -> int | None:
        """The job's log line number that the next shipped line will get (None: unknown)."""
        return self._next_line

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed:
                    self._wake.wait(self._flush_seconds)
                closed = self._closed
            self.ship_pending()
            if closed:
                return

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(JOIN_SECONDS * 4)
        self.ship_pending()


class _RedirectedFd:
    """One of fds 1 and 2 pointed at a pipe, whose reader tees and hands on lines."""

    def __init__(self, fd: int, stream: str, shipper: LogShipper) -> None:
        self.fd, self.stream, self.shipper = fd, stream, shipper
        self.synced = threading.Event()
        self.saved = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self._read_end = read_end
        self._thread = threading.Thread(target=self._pump, name=f"tass-log-{stream}", daemon=True)
        self._thread.start()

    def _tee(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            view = memoryview(data)
            while view:
                view = view[os.write(self.saved, view) :]

    def _line(self, raw: bytes) -> None:
        if raw == SYNC:
            self.synced.set()
        else:
            self.shipper.add(self.stream, raw)

    def _pump(self) -> None:
        partial = b""
        while data := os.read(self._read_end, 65536):
            self._tee(data.replace(SYNC + b"\n", b""))
            *lines, partial = (partial + data).split(b"\n")
            for raw in lines:
                self._line(raw)
            while len(partial) > MAX_LINE_BYTES:
                self._line(partial[:MAX_LINE_BYTES])
                partial = partial[MAX_LINE_BYTES:]
        if partial:
            self._line(partial)
        os.close(self._read_end)

    def sync(self) -> None:
        """Return once the reader has seen everything written to the fd before the call."""
        self.synced.clear()
        os.write(self.fd, SYNC + b"\n")
        self.synced.wait(JOIN_SECONDS)

    def restore(self) -> None:
        os.dup2(self.saved, self.fd)  # closes the pipe's write end: the reader sees EOF
        self._thread.join(JOIN_SECONDS)  # a child process still holding it is not waited for
        os.close(self.saved)


def _text_stream(fd: int) -> TextIO:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
    )


def _writes_to_stderr(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


class JobLogCapture:
    """While open, fds 1 and 2 (and sys.stdout/stderr, and the root logger) feed the log."""

    def __init__(
        self,
        ship: Ship,
        *,
        flush_seconds: float,
        scrub: Callable[[str], str],
        lines_stored: Callable[[], int] | None = None,
    ) -> None:
        self.shipper = LogShipper(ship, scrub, flush_seconds)
        # the job's stored line count, asked when this attempt has shipped nothing yet
        self._lines_stored = lines_stored
        self._fds: list[_RedirectedFd] = []
        self._handler: logging.Handler | None = None

    def __enter__(self) -> JobLogCapture:
        sys.stdout.flush()
        sys.stderr.flush()
        self.shipper.start()
        self._fds = [
            _RedirectedFd(1, "stdout", self.shipper),
            _RedirectedFd(2, "stderr", self.shipper),
        ]
        self._streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _text_stream(1), _text_stream(2)
        root = logging.getLogger()
        if not any(_writes_to_stderr(h) for h in root.handlers):  # e.g. not in a Celery worker
            self._handler = logging.StreamHandler(sys.stderr)
            self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            root.addHandler(self._handler)
        return self

    def sync(self) -> int | None:
        """Ship everything written so far; the log line number the next line will get."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for redirected in self._fds:
            redirected.sync()
        if not self.shipper.ship_pending():
            return None
        if self.shipper.next_line is None and self._lines_stored is not None:
            return self._lines_stored()  # nothing printed yet: the next line follows the stored
        return self.shipper.next_line

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = self._streams
        for redirected in self._fds:
            redirected.restore()
        self.shipper.close()


@contextlib.contextmanager
def capture_job_logs(ctx: WorkerContext, job_id: str, attempt: int) -> Iterator[JobLogCapture]:
    """Capture the job attempt's output into its log (see the module's docstring)."""
    with job_log_capture(ctx, job_id, attempt) as capture:
        yield capture


def job_log_capture(ctx: WorkerContext, job_id: str, attempt: int) -> JobLogCapture:
    """The (not yet entered) capture of the job attempt's output."""
    max_bytes = int(ctx.settings.job_log_max_mb * 1024 * 1024)
    state = {"seq": 0, "stored": 0}

    def ship(lines: list[LogLine]) -> int:
        seq = state["seq"]
        state["seq"] += 1  # a chunk whose indexing failed is shipped again under a new key
        first = store_chunk(ctx.sessions, ctx.store, job_id, attempt, seq, lines)
        state["stored"] += sum(len(line.line) + 40 for line in lines)
        if state["stored"] > max_bytes:
            _, dropped = drop_oldest(ctx.sessions, ctx.store, job_id, attempt, max_bytes)
            state["stored"] -= dropped
        return first

    return JobLogCapture(
        ship,
        flush_seconds=ctx.settings.job_log_flush_seconds,
        scrub=Scrubber(),
        lines_stored=lambda: stored_line_count(ctx.sessions, job_id),
    )
