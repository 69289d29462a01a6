"""Error texts that users read never name a server folder: the data roots, the data folder,
the artifact folder, a job's working folder or any other absolute path on the server.

`path_free(text, folders)` shows a path inside a known folder relative to it (a dataset as the
user named it under the data roots: `pets/train.tar.gz`), and any other absolute path as its
file name alone (`.../model.keras`). URLs and `s3://` keys are left as they are."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from tass.core.settings import Settings

HIDDEN = "..."
# an absolute POSIX path of two or more parts that is not the tail of a URL, a key or a
# relative path (nothing path-like or word-like right before its first slash)
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~\-])(?:/[^\s/'\"`:,;()\[\]{}<>]+){2,}/?")


def server_folders(settings: Settings) -> list[Path]:
    """The server's own folders that errors may mention by a path inside them: data roots, the
    data folder (its dataset cache) and the local artifact folder. (A job's working folder is
    a temporary one: its paths shrink to their file names like any other.)"""
    folders = [*settings.resolved_data_roots, settings.data_dir]
    parsed = urlparse(settings.resolved_artifact_url)
    if parsed.scheme == "file":
        folders.append(Path(unquote(parsed.path)))
    return folders


def _spellings(folders: Iterable[str | Path]) -> list[str]:
    """Each folder as written and resolved (symlinks followed), longest first, no trailing /."""
    out: set[str] = set()
    for folder in folders:
        for path in (Path(folder), Path(folder).expanduser().resolve()):
            text = str(path).rstrip("/")
            if len(text) > 1:  # never the file system root
                out.add(text)
    return sorted(out, key=len, reverse=True)


def _shorten(match: re.Match[str]) -> str:
    name = match.group(0).rstrip("/").rsplit("/", 1)[-1]
    return f"{HIDDEN}/{name}"


def path_free(text: str, folders: Iterable[str | Path] = ()) -> str:
    """`text` without server paths: a path inside one of `folders` relative to it (the folder
    itself as `...`), any other absolute path as `.../FILE_NAME`."""
    for folder in _spellings(folders):
        pattern = re.compile(rf"(?<![\w.\-]){re.escape(folder)}(?:/|(?![\w.\-]))")
        text = pattern.sub(lambda m: "" if m.group(0).endswith("/") else HIDDEN, text)
    return _ABSOLUTE_PATH.sub(_shorten, text)
