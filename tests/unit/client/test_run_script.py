"""scripts/run.sh tells a newcomer how to reach the `tass` CLI it installed in .venv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tass import client

ROOT = Path(client.__file__).resolve().parents[1]


def fake_checkout(tmp_path: Path) -> Path:
    """A copy of run.sh beside a setup.sh that installs nothing and a .venv/bin/tass that echoes."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    setup = tmp_path / "scripts" / "setup.sh"
    setup.write_text("#!/usr/bin/env bash\nexit 0\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    tass = tmp_path / ".venv" / "bin" / "tass"
    tass.write_text('#!/usr/bin/env bash\necho "tass $*"\n')
    for path in (setup, tass):
        path.chmod(0o755)
    return tmp_path


def run_script(checkout: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh"), "--port", "8080"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PATH": path},
        check=True,
    )


def test_run_sh_says_where_the_cli_is_when_it_is_not_on_path(tmp_path):
    checkout = fake_checkout(tmp_path)

    done = run_script(checkout, "/usr/bin:/bin")

    assert done.stdout.strip() == "tass up --port 8080"
    assert f"{checkout}/.venv/bin/tass" in done.stderr
    assert f"source {checkout}/.venv/bin/activate" in done.stderr


def test_run_sh_stays_quiet_about_the_cli_when_the_venv_is_active(tmp_path):
    checkout = fake_checkout(tmp_path)

    done = run_script(checkout, f"{checkout}/.venv/bin:/usr/bin:/bin")

    assert done.stdout.strip() == "tass up --port 8080"
    assert "activate" not in done.stderr
