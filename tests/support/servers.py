"""Data servers of the tests' own: a `redis-server` and a throwaway PostgreSQL cluster on free
loopback ports, in temporary folders, ended with the test process (tests/support/processes.py).
Tests that need a broker, or that stop or break a server, use these, so the machine's Redis and
PostgreSQL are never flushed, stopped or shared between two test runs."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

from tests.support.processes import Service, free_port, reaper

# PostgreSQL refuses to run as root, and CI runs the tests as root: then the server runs as the
# first of these accounts that exists
UNPRIVILEGED_USERS = ("postgres", "nobody")


def wait_until_ready(
    service: Service, ready: Callable[[], bool], what: str, timeout: float = 60
) -> None:
    """Wait until `ready()` says the service answers; fail with its log if it exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not service.alive():
            raise RuntimeError(f"{what} exited:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start:\n{service.log_tail()}")
        time.sleep(0.1)


class RedisServer:
    """A `redis-server` on 127.0.0.1 with no persistence, in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.starts = 0
        self.service = self._start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _start(self) -> Service:
        self.starts += 1
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.folder), "--save", "", "--appendonly", "no"]
        service = Service(f"redis-{self.port}-{self.starts}", args, {}, self.folder)
        wait_until_ready(service, self.ping, f"redis-server on port {self.port}")
        return service

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def restart(self) -> None:
        """Stop the server (nothing saved: it comes back empty) and start it on the same port."""
        self.stop()
        self.service = self._start()

    def stop(self) -> None:
        self.service.stop()


def postgres_bin(program: str) -> str:
    """`program` of the newest PostgreSQL under /usr/lib/postgresql, else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_version_key)
    path = found[-1] if found else shutil.which(program)
    if path is None:
        raise FileNotFoundError(f"{program} (PostgreSQL server binaries) not found")
    return path


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def unprivileged_account() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LookupError(f"none of the accounts {UNPRIVILEGED_USERS} exists to run PostgreSQL as")


def as_unprivileged(args: list[str]) -> list[str]:
    """`args` run as an unprivileged account when we are root (setpriv execs: the same pid, so
    signals reach the server itself)."""
    if os.geteuid() != 0:
        return args
    account = unprivileged_account()
    ids = [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
    return ["setpriv", *ids, "--", *args]


class PostgresCluster:
    """A throwaway PostgreSQL cluster: `initdb` in a temporary folder, a server on a free port of
    127.0.0.1 with its unix socket in that folder, trust authentication, superuser `postgres`.
    The folder is owned by the user the server runs as and deleted when the test process ends."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tass-test-pg-"))
        reaper().tell(f"dir {self.folder}")
        if os.geteuid() == 0:
            account = unprivileged_account()
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self.data = self.folder / "data"
        self.port = free_port()
        self.starts = 0
        self._initdb()
        self.service = self._start()

    def _initdb(self) -> None:
        initdb = [postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        initdb += ["-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        done = subprocess.run(
            as_unprivileged(initdb), cwd=self.folder, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def _start(self) -> Service:
        self.starts += 1
        args = [postgres_bin("postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += ["-k", str(self.folder), "-c", "listen_addresses=127.0.0.1"]
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        name = f"postgres-{self.port}-{self.starts}"
        service = Service(name, as_unprivileged(args), {}, self.folder, cwd=self.folder)
        wait_until_ready(service, self.accepts_connections, f"postgres on port {self.port}")
        return service

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.url(driver="postgresql"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create database `name`; its SQLAlchemy URL."""
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): sessions are ended, the data stays for `start`."""
        self.service.stop(timeout=60, signum=signal.SIGINT)

    def start(self) -> None:
        self.service = self._start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
