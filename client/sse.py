"""A small server-sent events parser (the text/event-stream format) over decoded lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its name (`message` when unnamed), data, and last seen id."""

    event: str = "message"
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON (raises ValueError when it is not)."""
        return json.loads(self.data)


def iter_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Yield events from lines without their line endings (as `httpx.Response.iter_lines` gives).

    Follows the event-stream rules: `:` lines are comments (keep-alive pings), one leading space
    after the field's colon is dropped, several `data:` lines join with newlines, a blank line
    dispatches. An event still pending when the stream ends is dispatched too, so a server that
    closes without the final blank line still delivers its last event.
    """
    name: str | None = None
    data: list[str] = []
    last_id: str | None = None
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(name or "message", "\n".join(data), last_id)
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\x00" not in value:
            last_id = value
    if data:
        yield ServerSentEvent(name or "message", "\n".join(data), last_id)
