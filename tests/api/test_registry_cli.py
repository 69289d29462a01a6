"""`tass registry` and `tass download NAME@ALIAS` against the real API app (in process)."""

from __future__ import annotations

import hashlib

from tass.core.objectstore import ObjectStore
from tests.support.seed import seed_trained_model


def test_register_alias_show_and_download_by_reference(tass_cli, db, settings, tmp_path):
    store = ObjectStore(settings.resolved_artifact_url)
    with db() as session:
        models = [
            seed_trained_model(session, store, f"model {n}".encode() * 100, tenant="acme")
            for n in (1, 2)
        ]
        session.commit()
        first, second = (m.id for m in models)

    assert tass_cli("registry", "register", "cats", first).stdout.strip() == (
        f"cats version 1: model {first}"
    )
    registered = tass_cli("registry", "register", "cats", second, "--description", "cat model")
    assert registered.exit_code == 0 and "version 2" in registered.stdout
    moved = tass_cli("registry", "alias", "cats", "production", "2")
    assert moved.exit_code == 0, moved.output
    listed = tass_cli("registry", "list")
    assert "production=2" in listed.stdout and "cat model" in listed.stdout
    shown = tass_cli("registry", "show", "cats")
    assert any(second in line and "production" in line for line in shown.stdout.splitlines())

    downloaded = tass_cli("download", "cats@production", "-o", str(tmp_path / "m.keras"))
    assert downloaded.exit_code == 0, downloaded.output
    digest = hashlib.sha256((tmp_path / "m.keras").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(b"model 2" * 100).hexdigest()

    bad = tass_cli("registry", "alias", "cats", "production", "9")
    assert bad.exit_code != 0 and "no version 9" in bad.output
    assert tass_cli("registry", "alias", "cats", "production", "--delete").exit_code == 0
    gone = tass_cli("download", "cats@production", "-o", str(tmp_path / "x.keras"))
    assert gone.exit_code != 0 and "production" in gone.output

    removed = tass_cli("registry", "delete-version", "cats", "1")
    assert removed.exit_code == 0 and "cats version 1 removed" in removed.stdout
    assert "model " + first not in tass_cli("registry", "show", "cats").stdout
    again = tass_cli("registry", "delete-version", "cats", "1")
    assert again.exit_code != 0 and "no version 1" in again.output
