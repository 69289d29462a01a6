"""One way to page: the page models every listing answers with, and the `limit` and `cursor`
query parameters they take.

`limit` is bounded by the `max_page_size` setting: a larger one is served as a page of
`max_page_size` rows (so a client asking for 200 still works where an operator set 100), and
anything above `MAX_LIMIT` (which `max_page_size` may not exceed) is a 422 naming `limit`. An
opaque cursor this service did not make is a 422 naming `cursor`: core raises `BadCursor`,
mapped once in `tass.api.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from tass.api.deps import SettingsDep
from tass.core.settings import MAX_PAGE_SIZE_LIMIT

Item = TypeVar("Item")

MAX_LIMIT = MAX_PAGE_SIZE_LIMIT

# A keyset cursor as core encodes it (tass.core.pagination): opaque to clients.
CursorQuery = Annotated[str | None, Query(max_length=200, description="A page's next_cursor.")]


class Items(BaseModel, Generic[Item]):
    """A listing returned whole (up to `limit`): `{"items": [...]}`."""

    items: list[Item]


class Page(Items[Item], Generic[Item]):
    """One page of a listing: `{"items": [...], "next_cursor": ...}` (null on the last)."""

    next_cursor: str | None


def page_limit(default: int) -> Callable[..., int]:
    """A dependency: the `limit` query parameter (`default` when absent), at most the
    `max_page_size` setting."""

    def limit_dependency(
        settings: SettingsDep,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="Rows per page (at most max_page_size).")
        ] = default,
    ) -> int:
        return min(limit, settings.max_page_size)

    return limit_dependency


PageLimit = Annotated[int, Depends(page_limit(50))]
