"""Child processes for the service commands: one with signals forwarded (`tass api`,
`tass worker`), or several supervised together (`tass up`)."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType

from tass.client.errors import TassError

# Signals that ask the whole service to stop; SIGQUIT is forwarded too (Celery: cold shutdown).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
FORWARDED_SIGNALS = STOP_SIGNALS + ((signal.SIGQUIT,) if hasattr(signal, "SIGQUIT") else ())


# A worker that was sent SIGTERM on its own (a preemption drill, an OOM-killer's cousin, an
# admin) checkpoints its job, hands it back and exits 0 (Celery's warm shutdown), or dies of
# the signal: `tass up` starts it again so the job resumes here.
AFTER_SIGTERM = frozenset({0, 128 + signal.SIGTERM})


@dataclass(frozen=True)
class Child:
    """A process to run: a name for messages, its argv, and extra environment variables;
    `restart_after`: exit statuses after which the supervisor starts it again (none: when it
    exits, the whole service stops)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    restart_after: frozenset[int] = frozenset()


def exit_status(returncode: int) -> int:
    """A child's return code as a shell exit status (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


# The service's processes make files for their own user alone (0600, folders 0700): the
# embedded database, the queue, artifacts and caches hold every tenant's data and secrets.
SERVICE_UMASK = 0o077


def spawn(child: Child) -> subprocess.Popen[bytes]:
    """Start `child` in its own session, so a terminal's Ctrl-C reaches only this process, which
    passes it on exactly once (uvicorn and Celery treat a second SIGINT as "force quit"); its
    umask is SERVICE_UMASK."""
    env = {**os.environ, **child.env} if child.env else None
    try:
        return subprocess.Popen(
            list(child.argv), env=env, start_new_session=True, umask=SERVICE_UMASK
        )
    except OSError as exc:
        raise TassError(f"cannot start the {child.name}: {exc}") from exc


@contextmanager
def handling_signals(
    handler: Callable[[int, FrameType | None], None], signums: Sequence[int]
) -> Iterator[None]:
    """Install `handler` for `signums` (only possible on the main thread), restoring on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_child(child: Child) -> int:
    """Run one child to its end, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT; return its status."""
    process = spawn(child)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    with handling_signals(forward, FORWARDED_SIGNALS):
        return exit_status(process.wait())


class Outcome(enum.Enum):
    """Why `Supervisor.wait` returned."""

    READY = "ready"
    STOP_REQUESTED = "stop requested"
    CHILD_EXITED = "child exited"
    TIMED_OUT = "timed out"


class Supervisor:
    """Runs several children as one service: when one exits, or a stop is requested (SIGINT,
    SIGTERM, SIGHUP, or `request_stop()`), all are stopped: SIGTERM, then SIGKILL for those still
    running after `stop_timeout` seconds (or at once on a second stop request). A child that
    exits with one of its `restart_after` statuses is started again instead (at most
    `max_restarts` times a minute; then it counts as exited), and `on_restart(name)` is told.

    Use as a context manager: entering starts the children and installs the signal handlers,
    leaving stops the children and restores the handlers.
    """

    def __init__(
        self,
        children: Sequence[Child],
        *,
        stop_timeout: float = 20.0,
        poll_interval: float = 0.1,
        max_restarts: int = 5,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        names = [child.name for child in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.children = list(children)
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.max_restarts = max_restarts
        self.on_restart = on_restart
        self.restarts: dict[str, list[float]] = {child.name: [] for child in children}
        self._stop = threading.Event()
        self._force = threading.Event()
        self._signals = ExitStack()

    def __enter__(self) -> Supervisor:
        self._signals.enter_context(handling_signals(self._on_signal, STOP_SIGNALS))
        try:
            for child in self.children:
                self.processes[child.name] = spawn(child)
        except BaseException:
            self.stop()
            self._signals.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self._signals.close()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_stop()

    def request_stop(self) -> None:
        """Ask `wait` to return; a second request makes `stop` kill without waiting."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    def restart_exited(self) -> None:
        """Start again each child that exited with one of its `restart_after` statuses, unless a
        stop was requested or it already restarted `max_restarts` times in the last minute."""
        for child in self.children:
            process = self.processes.get(child.name)
            if self._stop.is_set() or process is None or process.poll() is None:
                continue
            if exit_status(process.returncode) not in child.restart_after:
                continue
            now = time.monotonic()
            recent = [t for t in self.restarts[child.name] if now - t < 60.0]
            if len(recent) >= self.max_restarts:
                continue
            self.restarts[child.name] = [*recent, now]
            self.processes[child.name] = spawn(child)
            if self.on_restart is not None:
                self.on_restart(child.name)

    def exited(self) -> tuple[str, int] | None:
        """The first child (in start order) that has exited, with its exit status."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, exit_status(code)
        return None

    def wait(
        self, ready: Callable[[], bool] | None = None, timeout: float | None = None
    ) -> Outcome:
        """Block until a child exits, a stop is requested, `ready()` is true, or `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._stop.is_set():
                return Outcome.STOP_REQUESTED
            self.restart_exited()
            if self.exited() is not None:
                return Outcome.CHILD_EXITED
            if ready is not None and ready():
                return Outcome.READY
            if deadline is not None and time.monotonic() >= deadline:
                return Outcome.TIMED_OUT
            self._stop.wait(self.poll_interval)

    def stop(self) -> dict[str, int]:
        """Stop every child still running; return each child's exit status."""
        running = [p for p in self.processes.values() if p.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for process in running:
            while process.poll() is None:
                if self._force.is_set() or time.monotonic() >= deadline:
                    process.kill()
                    process.wait()
                    break
                try:
                    process.wait(timeout=self.poll_interval)
                except subprocess.TimeoutExpired:
                    continue
        return {name: exit_status(p.wait()) for name, p in self.processes.items()}
