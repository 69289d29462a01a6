"""Errors the client raises; the CLI prints them as one readable message, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

# Leading `loc` parts that name where a FastAPI field lives rather than the field itself.
_LOC_PREFIXES = ("body",)
# Tags a discriminated union puts in `loc` (the job body is a union on `type`).
_UNION_TAGS = ("train", "evaluate")


class TassError(Exception):
    """Base class: a failure to report to the user; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(TassError):
    """Bad input from the user (a spec file, a --data value, a --tag) found before any request."""

    exit_code = 2


class ServerUnreachable(TassError):
    """The API could not be reached (connection refused, DNS, timeout, dropped connection)."""

    def __init__(self, url: str, cause: Exception) -> None:
        self.url = url
        self.cause = cause
        if isinstance(cause, httpx.ConnectError):
            what = f"cannot connect to the tass API at {url}"
        elif isinstance(cause, httpx.TimeoutException):
            what = f"the tass API at {url} did not answer in time"
        else:
            what = f"the connection to the tass API at {url} failed"
        reason = str(cause) or type(cause).__name__
        super().__init__(
            f"{what} ({reason}).\n"
            "Is the server running? Start one with `tass up`, or point --url / TASS_URL at it."
        )


class ApiError(TassError):
    """The API answered with an HTTP error; `messages` are the server's, one per problem."""

    def __init__(self, status_code: int, reason: str, messages: Sequence[str]) -> None:
        self.status_code = status_code
        self.reason = reason
        self.messages = list(messages)
        head = f"HTTP {status_code} {reason}".rstrip()
        if len(self.messages) == 1:
            text = f"{self.messages[0]} ({head})"
        elif self.messages:
            text = f"the server rejected the request ({head}):\n" + "\n".join(
                f"  - {message}" for message in self.messages
            )
        else:
            text = f"the server answered {head}"
        if status_code == 401:
            text += "\nSet TASS_API_KEY to your API key."
        super().__init__(text)

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Build the error from a (possibly streamed) error response."""
        response.read()
        try:
            payload: Any = response.json()
        except ValueError:
            text = response.text.strip()
            messages = [text[:500]] if text else []
        else:
            detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
            messages = format_detail(detail)
        return cls(response.status_code, response.reason_phrase, messages)


def format_detail(detail: Any) -> list[str]:
    """FastAPI's `detail` (a message, or a list of {loc, msg, type}) as `field.path: msg` lines."""
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, list):
        return [_format_item(item) for item in detail]
    if detail is None:
        return []
    return [str(detail)]


def _format_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    message = str(item.get("msg") or item.get("message") or item)
    loc = [str(part) for part in item.get("loc") or []]
    if loc and loc[0] in _LOC_PREFIXES:
        loc = loc[1:]
        if loc and loc[0] in _UNION_TAGS:
            loc = loc[1:]
    path = ".".join(loc)
    if not path or message.startswith(f"{path}:") or message.startswith(f"{path} "):
        return message
    return f"{path}: {message}"
