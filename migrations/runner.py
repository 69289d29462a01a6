"""Run and check Alembic migrations from code (`tass migrate`, app start-up, tests).

It lives beside the revisions it runs: migrations build on core (env.py reads its models and
settings), and core never imports migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

from tass.core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent


class SchemaOutOfDate(RuntimeError):
    """The database is not at the latest migration."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@dataclass(frozen=True)
class Upgraded:
    """What an upgrade did: the revision before (None: an empty database), the one after,
    and the (revision, description) of each migration it applied, oldest first."""

    before: str | None
    after: str | None
    applied: list[tuple[str, str]]


def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(database_url: str | None = None) -> Upgraded:
    """Upgrade the database to the latest revision (creating the SQLite folder if needed)."""
    settings = get_settings()
    url = database_url or settings.resolved_database_url
    embedded = url.startswith("sqlite") and database_url is None
    if embedded:
        settings.ensure_data_dir()
    before = current_revision(url)
    command.upgrade(alembic_config(url), "head")
    after = current_revision(url)
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    applied = [] if after == before else list(script.iterate_revisions(after, before or "base"))
    steps = [(rev.revision, " ".join((rev.doc or "").split())) for rev in reversed(applied)]
    if embedded:
        settings.ensure_data_dir()  # the database file it may just have made: 0600
    return Upgraded(before, after, steps)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def check_schema_current(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the head revision."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `tass migrate` (or `alembic upgrade head`) first"
        )


__all__ = ["SchemaOutOfDate", "Upgraded", "check_schema_current", "head_revision", "upgrade"]
