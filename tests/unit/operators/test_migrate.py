"""`tass migrate` says what it did: on an empty database, every migration it applied; on an
up-to-date one, that there was nothing to apply."""

from __future__ import annotations

from typer.testing import CliRunner

from tass.client import cli
from tass.migrations.runner import head_revision


def test_migrate_lists_what_it_applied_then_says_there_is_nothing_left(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    first = CliRunner().invoke(cli.app, ["migrate", "--database-url", url])
    again = CliRunner().invoke(cli.app, ["migrate", "--database-url", url])

    assert first.exit_code == 0, first.output
    assert "up to date" not in first.stderr
    assert "migrations to an empty database:" in first.stderr
    assert "  0001  jobs, transitions, metrics, models, artifacts" in first.stderr
    assert first.stderr.strip().endswith(f"the database schema is now at {head_revision()}")
    assert again.exit_code == 0, again.output
    assert again.stderr.strip() == (
        f"the database schema is up to date (at {head_revision()}); nothing to apply"
    )
