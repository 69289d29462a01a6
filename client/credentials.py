"""The user's credentials file: API keys by server URL, readable by the owner only (0600).

`tass up` stores the admin key it creates here; every command finds the key for its URL here
when TASS_API_KEY is not set."""

from __future__ import annotations

import json
import os
from pathlib import Path

CREDENTIALS_ENV = "TASS_CREDENTIALS_FILE"


def credentials_path() -> Path:
    if os.environ.get(CREDENTIALS_ENV):
        return Path(os.environ[CREDENTIALS_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tass" / "credentials.json"


def load_keys() -> dict[str, str]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    keys = data.get("keys") if isinstance(data, dict) else None
    return {str(url): str(key) for url, key in keys.items()} if isinstance(keys, dict) else {}


def key_for(url: str) -> str | None:
    return load_keys().get(url.rstrip("/"))


def save_key(url: str, key: str) -> Path:
    """Store `key` for `url`, creating the file with 0600 permissions (never wider)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = {**load_keys(), url.rstrip("/"): key}
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": keys}, handle, indent=2)
    os.chmod(path.with_suffix(".tmp"), 0o600)
    os.replace(path.with_suffix(".tmp"), path)
    return path
