"""Packaging: setuptools' build step (what `pip install .` runs) puts the dashboard's pages and
assets and the migrations' template into the package, and warns about none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# setuptools' build_py alone, configured from pyproject.toml (a second, not a whole wheel)
BUILD_PY = """
import sys, warnings
from setuptools import Distribution
from setuptools.config.pyprojecttoml import apply_configuration
warnings.simplefilter("always")
dist = Distribution({"script_name": "setup.py"})
apply_configuration(dist, "pyproject.toml")
dist.get_command_obj("egg_info").egg_base = sys.argv[2]  # nothing written in the checkout
build = dist.get_command_obj("build_py")
build.build_lib = sys.argv[1]
build.compile = 0
dist.run_command("build_py")
"""


def test_build_ships_the_dashboard_files_without_warnings(tmp_path):
    built = subprocess.run(
        [sys.executable, "-c", BUILD_PY, str(tmp_path / "lib"), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "would be ignored" not in output and "as data is deprecated" not in output, output
    dashboard = REPO / "api" / "dashboard"
    wanted = [
        *(f"tass/api/dashboard/static/{p.name}" for p in (dashboard / "static").iterdir()),
        *(f"tass/api/dashboard/templates/{p.name}" for p in (dashboard / "templates").iterdir()),
        "tass/migrations/script.py.mako",
    ]
    assert len(wanted) > 20
    assert [name for name in wanted if not (tmp_path / "lib" / name).is_file()] == []


def test_the_image_copies_every_package_folder_the_build_installs():
    """The Dockerfile copies the folders one by one before `pip install .`: a package folder
    it leaves out would be missing from the image (a new one, such as contract/, included)."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = set(setuptools["package-dir"].values())
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "contract" in folders
    assert sorted(f for f in folders if f"COPY {f} ./{f}\n" not in dockerfile) == []
