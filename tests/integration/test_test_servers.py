"""The tests' own servers and processes (tests/support/servers.py, processes.py): a killed test
run leaves nothing behind, and the PostgreSQL cluster and Redis server the fault tests stop are
private ones on free loopback ports (the machine's servers are never touched)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.processes import REPO
from tests.support.servers import PostgresCluster, RedisServer

pytestmark = pytest.mark.integration

# A test process in miniature: a service that starts a child in a session of its own (as
# `tass up` starts its api and worker), a Redis server and a PostgreSQL cluster; it prints their
# pids and waits to be killed.
TEST_PROCESS = """
import json, sys, tempfile, time
from pathlib import Path
from tests.support.processes import Service
from tests.support.servers import PostgresCluster, RedisServer

folder = Path(tempfile.mkdtemp())
supervisor = (
    "import subprocess, sys, time\\n"
    "child = subprocess.Popen(['sleep', '600'], start_new_session=True)\\n"
    "print(child.pid, flush=True)\\n"
    "time.sleep(600)\\n"
)
service = Service("supervisor", [sys.executable, "-c", supervisor], {}, folder)
while not (service.log_path.read_text().strip()):
    time.sleep(0.05)
redis_server, cluster = RedisServer(folder), PostgresCluster()
print(json.dumps({
    "service": service.proc.pid,
    "escaped": int(service.log_path.read_text()),
    "redis": redis_server.service.proc.pid,
    "postgres": cluster.service.proc.pid,
    "cluster_folder": str(cluster.folder),
}), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie waiting for a parent that never reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_test_process_leaves_no_service_behind():
    child = subprocess.Popen(
        [sys.executable, "-c", TEST_PROCESS],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        pids = {name: started[name] for name in ("service", "escaped", "redis", "postgres")}
        assert all(running(pid) for pid in pids.values()), pids
        child.send_signal(signal.SIGKILL)
        child.wait()

        deadline = time.monotonic() + 30
        while any(running(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [name for name, pid in pids.items() if running(pid)] == []
        while Path(started["cluster_folder"]).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(started["cluster_folder"]).exists()
    finally:
        child.kill()


def test_a_private_postgres_cluster_stops_and_starts_with_its_data(tmp_path: Path):
    cluster = PostgresCluster()
    try:
        url = cluster.create_database("kept").replace("+psycopg", "")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
            address = conn.execute("SELECT inet_server_addr()::text").fetchone()
        assert address == ("127.0.0.1/32",)
        assert cluster.port != 5432
        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        cluster.start()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        cluster.destroy()
    assert not cluster.folder.exists()


def test_a_private_redis_server_restarts_empty_on_its_port(tmp_path: Path):
    server = RedisServer(tmp_path)
    try:
        assert server.port != 6379
        redis.Redis.from_url(server.url(3)).set("queued", "1")
        server.restart()
        assert redis.Redis.from_url(server.url(3)).get("queued") is None
        assert redis.Redis.from_url(server.url(3)).ping()
    finally:
        server.stop()
