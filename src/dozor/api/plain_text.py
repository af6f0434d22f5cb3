"""Text the database can keep: no NUL characters anywhere in a request.

PostgreSQL's ``text`` cannot hold U+0000 (SQLite can), so a name with ``\\u0000`` in it
would fail deep inside a transaction on one database and be stored on the other. The API
refuses it up front, the same on both, naming the field: a JSON body's path, a query
parameter or a path parameter. A raw NUL byte is not valid JSON anyway; only the escaped
form needs looking for, and only bodies that contain it are parsed twice.

>>> nul_path({"name": "ok", "tags": ["web", "a\\x00"]})
'tags.1'
>>> nul_path({"a\\x00": 1}), nul_path([1, None, "fine"])
('a\\x00', None)
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from dozor.api.problems import invalid

MESSAGE = "must not contain the NUL character (U+0000)"
_ESCAPED_NUL = b"\\u0000"


async def refuse_nul(request: Request) -> None:
    """A router dependency: 422 naming the first field that holds a NUL character."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if isinstance(value, str) and "\x00" in value:
            raise invalid([(name, MESSAGE)])
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    body = await request.body()  # kept by the request; the route reads it again for free
    if _ESCAPED_NUL not in body:
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: the route's own parsing answers that
    path = nul_path(document)
    if path is not None:
        raise invalid([(path or "(body)", MESSAGE)])


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (value or key) holding a NUL, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return inner
            found = nul_path(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
