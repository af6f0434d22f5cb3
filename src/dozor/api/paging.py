"""Cursor pagination: an opaque cursor carries where the last page ended; and the time
range filters that paged lists share.

>>> decode(encode(42))
42
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query

from dozor.api.problems import Problem, invalid

Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Start = Annotated[datetime | None, Query(description="from this moment (UTC unless an "
                                                     "offset is given)")]
End = Annotated[datetime | None, Query(description="until this moment, not included")]


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


def aware(value: datetime | None) -> datetime | None:
    """A time given without an offset is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def time_range(start: datetime | None, end: datetime | None
               ) -> tuple[datetime | None, datetime | None]:
    """``start`` and ``end`` in UTC; a 422 naming the field that is out of range, or
    ``end`` when it is not later than ``start``."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if start is not None and end is not None and end <= start:
        raise invalid([("end", "must be after start")])
    return start, end


def _utc(value: datetime | None, field: str) -> datetime | None:
    moment = aware(value)
    try:
        return moment.astimezone(UTC) if moment is not None else None
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before the first UTC year
        raise invalid([(field, "out of range")]) from None
