"""Secrets kept out of job logs: the values of the environment's secret-looking variables,
and the password of any URL with credentials, are replaced before a line is stored."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE|AUTH|(^|_)KEY($|_)",
    re.IGNORECASE,
)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)@", re.I)
MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values ("1", "true") would mask ordinary text


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values to mask: those of variables named like secrets, and URL passwords anywhere."""
    values = set()
    for name, value in environ.items():
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            values.add(value)
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password and len(password) >= MIN_SECRET_LENGTH:
                values.add(password)
    return sorted(values, key=len, reverse=True)  # a longer secret before any part of it


class Scrubber:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        values = secret_values(os.environ if environ is None else environ)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, line: str) -> str:
        if self._pattern is not None:
            line = self._pattern.sub(MASK, line)
        if "://" in line:
            line = URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", line)
        return line
