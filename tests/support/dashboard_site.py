"""The dashboard's end-to-end tests' site: uvicorn over a migrated SQLite database of its own,
seeded by the test module, with the session factory kept for the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tass.core.apikeys import create_key
from tass.core.db import SessionFactory, make_engine, make_session_factory
from tass.migrations.runner import upgrade
from tests.support.processes import start_api

Seed = Callable[[SessionFactory, Path], Mapping[str, Any]]


def seed_key(factory: SessionFactory, _root: Path) -> dict[str, Any]:
    """The least a site needs: an API key of tenant `acme` (as `key`)."""
    with factory.begin() as session:
        _, key = create_key(session, "acme")
    return {"key": key}


@contextmanager
def dashboard_site(
    root: Path, seed: Seed = seed_key, env: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Start the API over a fresh database under `root` that `seed(factory, root)` fills; yield
    `url`, `service`, `root`, `db` (the session factory), `env` (the service's) and what
    `seed` returned."""
    db_url = f"sqlite:///{root / 'tass.db'}"
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        seeded = seed(factory, root)
        full_env = {
            "TASS_DATA_DIR": str(root),
            "TASS_DATABASE_URL": db_url,
            "TASS_BROKER_URL": f"sqla+sqlite:///{root / 'broker.db'}",
            "TASS_ARTIFACT_URL": (root / "artifacts").as_uri(),
            **(env or {}),
        }
        service, url = start_api(full_env, root)
        try:
            yield {
                "url": url,
                "service": service,
                "root": root,
                "db": factory,
                "env": full_env,
                **seeded,
            }
        finally:
            service.stop()
    finally:
        engine.dispose()
