"""Cursor pagination: an opaque cursor carries where the last page ended.

>>> decode(encode(42))
42
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from dozor.api.problems import Problem


def encode(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


ID_RANGE = (0, 2**31 - 1)  # a cursor that is an id
TIME_RANGE = (-(2**62), 2**62)  # a cursor that is a time in epoch milliseconds


def decode(cursor: str | None, bounds: tuple[int, int] = ID_RANGE) -> int | None:
    """The position in a cursor; a 422 naming ``cursor`` for one this API did not give.

    >>> decode(encode(2**40))
    Traceback (most recent call last):
    ...
    dozor.api.problems.Problem: cursor: not a cursor this API gave
    """
    if not cursor:
        return None
    try:
        position = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        position = None
    if position is None or not bounds[0] <= position <= bounds[1]:
        raise Problem(422, "cursor: not a cursor this API gave",
                      errors=[{"field": "cursor", "message": "invalid"}])
    return position


def page(rows: Sequence[Any], limit: int, view: Callable[[Any], dict[str, Any]],
         position: Callable[[Any], int] = lambda row: int(row.id)) -> dict[str, Any]:
    """A page from up to ``limit + 1`` rows: the extra row only says there is more."""
    more = len(rows) > limit
    return {"items": [view(row) for row in rows[:limit]],
            "next_cursor": encode(position(rows[limit - 1])) if more else None}
