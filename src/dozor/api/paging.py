"""Cursor pagination: an opaque cursor carries where the last page ended.

>>> decode(encode(42))
42
"""

from __future__ import annotations

import base64

from dozor.api.problems import Problem


def encode(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "cursor: not a cursor this API gave",
                      errors=[{"field": "cursor", "message": "invalid"}]) from None
