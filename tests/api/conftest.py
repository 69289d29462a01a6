"""API tests: the real app over a migrated database, on SQLite and on PostgreSQL, with each
test's writes rolled back; tasks go to an in-memory broker the test can read."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tass.api.app import create_app
from tass.client.cli import CliState
from tass.client.cli import app as tass
from tass.core.apikeys import create_key, revoke_key
from tass.core.change_feed import ChangeFeed
from tass.core.db import make_engine, make_session_factory
from tass.core.settings import Settings
from tass.core.workers import WorkerInfo, report_alive
from tass.migrations.runner import upgrade
from tass.worker.scheduler import Scheduler


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """A database migrated once per run: a SQLite template file, or the run's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'template.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    return url


@pytest.fixture
def engine(migrated_url: str, tmp_path: Path) -> Iterator[Engine]:
    """SQLite: a fresh copy of the migrated template per test. PostgreSQL: the shared one."""
    if migrated_url.startswith("sqlite"):
        copy = tmp_path / "api.db"
        shutil.copy(migrated_url.removeprefix("sqlite:///"), copy)
        migrated_url = f"sqlite:///{copy}"
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    (root / "images" / "train" / "cat").mkdir(parents=True)
    return root


@pytest.fixture
def settings(engine: Engine, tmp_path: Path, data_root: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        broker_url="memory://",
        artifact_url=(tmp_path / "artifacts").as_uri(),
        data_roots=[data_root],
        sse_poll_seconds=0.05,
        allowed_hosts=["testserver"],  # TestClient's Host
    )


@pytest.fixture
def db(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions for the test and the app. On PostgreSQL they run inside one outer transaction
    that is rolled back after the test (commits become savepoints)."""
    if engine.dialect.name == "sqlite":
        yield make_session_factory(engine)
        return
    connection = engine.connect()
    outer = connection.begin()
    yield sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    outer.rollback()
    connection.close()


@pytest.fixture
def keys(db: sessionmaker[Session]) -> dict[str, str]:
    """Plaintext keys: tenant `acme`, tenant `globex`, an admin, and a revoked `acme` key."""
    made = {}
    with db() as session:
        for label, tenant, admin in [
            ("acme", "acme", False),
            ("globex", "globex", False),
            ("admin", "ops", True),
            ("revoked", "acme", False),
        ]:
            _, plaintext = create_key(session, tenant, admin=admin)
            made[label] = plaintext
        revoke_key(session, made["revoked"].split("_")[1])
        session.commit()
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app(settings: Settings, db: sessionmaker[Session]) -> Iterator[FastAPI]:
    """The app after start-up, its sessions bound to the test's database. Nothing is cached:
    the test's writes are rolled back, never committed, so no change feed sees them (the
    cache has its own tests, which commit: test_read_cache.py)."""
    application = create_app(settings)
    with TestClient(application):
        application.state.session_factory = db
        application.state.change_feed.close()
        application.state.change_feed = ChangeFeed()
        yield application


@pytest.fixture
def anonymous(app: FastAPI) -> TestClient:
    """A client that sends no key."""
    return TestClient(app)


@pytest.fixture
def client(app: FastAPI, keys: dict[str, str]) -> TestClient:
    """A client speaking as tenant `acme`."""
    return TestClient(app, headers=bearer(keys["acme"]))


class RecordingSender:
    """Takes the scheduler's task messages instead of a broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[object]]] = []

    def send_task(self, name: str, *, args: list[object], queue: str, task_id: str) -> None:
        self.sent.append((name, args))


@pytest.fixture
def drain_tasks(
    client: TestClient, db: sessionmaker[Session], settings: Settings
) -> Callable[[], list[tuple[str, list[object]]]]:
    """Returns (task name, args) of every task sent since the last call, consuming them: what
    one scheduling cycle sends to a live worker with room for everything waiting (jobs wait
    in the database until then), and what the API sent to the broker itself (validations)."""
    with db.begin() as session:
        report_alive(
            session,
            WorkerInfo("api-test-node", "localhost", 1, [], "cpu", [], pool="default", slots=64),
        )
    sender = RecordingSender()
    scheduler = Scheduler(sender, db, settings, holder="api-test-scheduler")

    def drain() -> list[tuple[str, list[object]]]:
        producer = client.app.state.producer
        found = []
        with producer.connection_for_read() as conn:
            for route in producer.conf.task_routes.values():
                queue = conn.SimpleQueue(route["queue"])
                while True:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        break
                    found.append((message.headers["task"], message.payload[0]))
                    message.ack()
                queue.close()
        scheduler.cycle()
        found += sender.sent
        sender.sent = []
        return found

    drain()  # start from an empty broker
    return drain


@pytest.fixture
def tass_cli(client, keys, monkeypatch) -> Callable[..., object]:
    """Runs the `tass` CLI in-process against the test app as tenant acme's key."""
    monkeypatch.setenv("TASS_API_KEY", keys["acme"])
    state = CliState(url="http://testserver", transport=client._transport)
    runner = CliRunner()
    return lambda *args: runner.invoke(tass, list(args), obj=state)
