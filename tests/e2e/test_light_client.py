"""The light install: `pip install tass` (no extra) into a clean virtualenv gives the Python client
and the `tass` CLI without the server packages, and the service commands say which extra they
need.

pip installs from the package index this machine is configured with (pip.conf, PIP_* variables);
if it cannot reach one the test fails: the light install is what it checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.integration

# What the wheel is built from: the project file, the README it names, the package folders.
SOURCES = ("pyproject.toml", "README.md")
PACKAGES = (
    "contract", "core", "api", "worker", "trainer", "client", "operators", "serving", "migrations",
)  # fmt: skip
SERVER_ONLY = ("sqlalchemy", "fastapi", "celery", "obstore", "numpy", "uvicorn")


def _run(*argv: str | Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


@pytest.fixture(scope="module")
def light(tmp_path_factory) -> Path:
    """The `bin` folder of a fresh virtualenv (no system site packages) holding `pip install
    tass`, built from a copy of this checkout (the build writes nothing into the checkout)."""
    root = tmp_path_factory.mktemp("light")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        shutil.copy2(REPO / name, source / name)
    for name in PACKAGES:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    created = _run(sys.executable, "-m", "venv", root / "venv")
    assert created.returncode == 0, created.stderr
    bin_dir = root / "venv" / "bin"
    installed = _run(bin_dir / "python", "-m", "pip", "install", source, timeout=240, cwd=root)
    assert installed.returncode == 0, (
        f"pip install of the light client failed (is the package index reachable?)\n"
        f"{installed.stdout[-3000:]}\n{installed.stderr[-3000:]}"
    )
    return bin_dir


def test_the_python_client_imports_without_the_server_packages(light):
    imported = _run(light / "python", "-c", "import tass.client.api_client, tass.client.cli")
    assert imported.returncode == 0, imported.stderr

    for name in SERVER_ONLY:
        missing = _run(light / "python", "-c", f"import {name}")
        assert missing.returncode != 0, f"{name} is installed by the light client"
        assert "ModuleNotFoundError" in missing.stderr


def test_the_cli_runs_its_user_commands(light):
    top = _run(light / "tass", "--help")
    assert top.returncode == 0, top.stderr
    assert "submit" in top.stdout and "status" in top.stdout

    train = _run(light / "tass", "submit", "train", "--help")
    assert train.returncode == 0, train.stderr
    for flag in ("--data", "--learning-rate", "--batch-size", "--translate", "--no-nesterov"):
        assert flag in train.stdout

    # a user command gets as far as the network: nothing listens on port 9 of loopback
    status = _run(light / "tass", "status", "job-1", "--url", "http://127.0.0.1:9")
    assert status.returncode == 1
    assert "cannot connect to the tass API at http://127.0.0.1:9" in status.stderr
    assert "Traceback" not in status.stderr


@pytest.mark.parametrize(
    "command", [["up"], ["api"], ["worker"], ["serve"], ["migrate"], ["keys", "list"], ["gc"]]
)
def test_service_commands_name_the_server_extra(light, command, tmp_path):
    result = _run(light / "tass", *command, cwd=tmp_path)

    assert result.returncode in (1, 2)
    assert "this command runs the service: pip install 'tass[server]'" in result.stderr
    assert "Traceback" not in result.stderr
