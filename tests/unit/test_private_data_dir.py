"""The embedded data dir is private to the user running the service: created 0700, an open one
(from before, or made by hand) tightened on start, files 0600; symlinks are never followed; and
the processes the service commands start make their files under umask 077."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from tass.core.settings import Settings
from tass.operators.supervisor import Child, run_child


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_data_dir_is_created_private(tmp_path: Path):
    old = os.umask(0o022)
    try:
        Settings(data_dir=tmp_path / "new" / "d").ensure_data_dir()
    finally:
        os.umask(old)
    assert mode(tmp_path / "new" / "d") == 0o700


def test_an_open_data_dir_is_tightened_on_start(tmp_path: Path):
    data = tmp_path / "d"
    model = data / "artifacts" / "models" / "m1" / "model.keras"
    model.parent.mkdir(parents=True)
    files = [data / "tass.db", data / "tass.db-wal", model, data / "datasets" / "a.tar.gz"]
    (data / "datasets").mkdir()
    for path in files:
        path.write_bytes(b"secret")
        path.chmod(0o644)
    for folder in [data, *model.parents][: -len(data.parents)]:
        folder.chmod(0o755)
    outside = tmp_path / "elsewhere.txt"
    outside.write_bytes(b"not the service's")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)

    Settings(data_dir=data).ensure_data_dir()

    assert mode(data) == 0o700
    assert [mode(path) for path in files] == [0o600] * len(files)
    assert {mode(folder) for folder in model.parents if data in folder.parents} == {0o700}
    assert mode(outside) == 0o644, "a symlink's target is not the service's to change"


def test_a_private_data_dirs_databases_are_tightened_on_every_start(tmp_path: Path):
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    database = data / "broker.db"
    database.write_bytes(b"rows")
    database.chmod(0o644)  # made by a process that was not started with the service's umask

    Settings(data_dir=data).ensure_data_dir()

    assert mode(database) == 0o600


def test_service_processes_make_private_files(tmp_path: Path):
    made = tmp_path / "made-by-the-child"
    child = Child("probe", [sys.executable, "-c", f"open({str(made)!r}, 'w').write('x')"])
    old = os.umask(0o022)
    try:
        assert run_child(child) == 0
    finally:
        os.umask(old)
    assert mode(made) == 0o600
