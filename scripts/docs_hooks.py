"""MkDocs hooks (mkdocs.yml `hooks:`): write the API's OpenAPI document before the site is built.

`docs/reference/api.md` renders it (neoteroi-mkdocs' `[OAD(...)]` tag), so the API reference is
generated from `create_app().openapi()` of this checkout and never drifts from the code. The
document is written under build/ (ignored by git), next to the site.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "build" / "docs" / "openapi.json"


def on_pre_build(config: Any) -> None:
    # create_app reads its settings from the environment: point the embedded defaults at a
    # throwaway folder so a docs build touches no one's data dir (nothing is connected).
    with tempfile.TemporaryDirectory(prefix="tass-docs-") as data_dir:
        previous = os.environ.get("TASS_DATA_DIR")
        os.environ["TASS_DATA_DIR"] = data_dir
        try:
            from tass.api.app import create_app
            from tass.core.settings import get_settings

            get_settings.cache_clear()
            document = create_app().openapi()
        finally:
            if previous is None:
                os.environ.pop("TASS_DATA_DIR", None)
            else:
                os.environ["TASS_DATA_DIR"] = previous
            get_settings.cache_clear()
    OPENAPI_FILE.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_FILE.write_text(json.dumps(document, indent=2) + "\n")


CLI_REFERENCE = "<!-- the tass command line, generated -->"


def on_page_markdown(markdown: str, **_: Any) -> str:
    if CLI_REFERENCE not in markdown:
        return markdown
    return markdown.replace(CLI_REFERENCE, cli_reference())


def cli_reference() -> str:
    """Markdown for every `tass` command and option, by Typer's own generator (`typer ... utils
    docs`), run on the app as the console script builds it (operator commands included)."""
    import typer
    from typer.cli import get_docs_for_click

    from tass.client.cli import app

    command = typer.main.get_command(app)
    docs = get_docs_for_click(obj=command, ctx=typer.Context(command), name="tass")
    # one page title is enough: the generator's own `# tass` heading goes, its sections move
    # up a level
    return docs.split("\n", 1)[1].replace("\n## ", "\n### ").strip() + "\n"
