"""`tass keys` and the admin key `tass up` creates, against a real (SQLite) database."""

from __future__ import annotations

import stat

import pytest
from typer.testing import CliRunner

from tass.client import cli
from tass.client.credentials import credentials_path, key_for
from tass.core.apikeys import authenticate
from tass.core.db import make_engine, make_session_factory
from tass.core.settings import get_settings
from tass.migrations.runner import upgrade
from tass.operators.keys_cli import ensure_admin_key

URL = "http://127.0.0.1:8000"


@pytest.fixture
def database(tmp_path, monkeypatch):
    monkeypatch.setenv("TASS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TASS_CREDENTIALS_FILE", str(tmp_path / "config" / "credentials.json"))
    monkeypatch.delenv("TASS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    (tmp_path / "data").mkdir()
    upgrade()
    yield make_session_factory(make_engine(get_settings().resolved_database_url))
    get_settings.cache_clear()


def test_keys_create_prints_a_working_key_once_and_revoke_stops_it(database):
    runner = CliRunner()
    created = runner.invoke(cli.app, ["keys", "create", "--tenant", "acme"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("tass_")
    with database() as session:
        principal = authenticate(session, key)
        assert principal is not None and principal.tenant == "acme" and not principal.is_admin

    listed = runner.invoke(cli.app, ["keys", "list"])
    assert "acme" in listed.stdout and key.split("_", 2)[2] not in listed.stdout

    assert runner.invoke(cli.app, ["keys", "revoke", key.split("_")[1]]).exit_code == 0
    with database() as session:
        assert authenticate(session, key) is None
    assert runner.invoke(cli.app, ["keys", "revoke", key.split("_")[1]]).exit_code == 1


def test_keys_create_refuses_a_bad_tenant_name(database):
    result = CliRunner().invoke(cli.app, ["keys", "create", "--tenant", "Bad Tenant!"])
    assert result.exit_code == 2
    assert "tenant" in result.stderr


def test_up_creates_an_admin_key_once_in_a_private_file(database):
    key = ensure_admin_key(URL)
    assert key is not None and key_for(URL) == key
    assert stat.S_IMODE(credentials_path().stat().st_mode) == 0o600
    with database() as session:
        assert authenticate(session, key).is_admin
    assert ensure_admin_key(URL) is None, "a second start keeps the stored key"


def test_up_replaces_a_stored_key_that_was_revoked(database):
    first = ensure_admin_key(URL)
    CliRunner().invoke(cli.app, ["keys", "revoke", first.split("_")[1]])
    second = ensure_admin_key(URL)
    assert second is not None and second != first and key_for(URL) == second
