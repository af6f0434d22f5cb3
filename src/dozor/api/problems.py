"""Errors as ``application/problem+json`` (RFC 9457), each naming the fields at fault.

>>> Problem(404, "monitor not found").body()
{'type': 'about:blank', 'title': 'Not Found', 'status': 404, 'detail': 'monitor not found'}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a route: becomes a problem+json response."""

    def __init__(self, status: int, detail: str, *,
                 errors: Sequence[dict[str, str]] = (),
                 headers: dict[str, str] | None = None, commit: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        # Keep what the request wrote before failing: a failed attempt's count, its audit
        # record. Otherwise a request's changes are rolled back with its error.
        self.commit = commit

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(self.status).phrase,
                                "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, media_type=MEDIA_TYPE,
                            headers=self.headers)


def invalid(errors: Sequence[tuple[str, str]]) -> Problem:
    """422 listing each field (a dotted path) and what is wrong with it."""
    fields = [{"field": field or "(body)", "message": message} for field, message in errors]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields)
    return Problem(422, summary, errors=fields)


def invalid_input(errors: Sequence[Any]) -> Problem:
    """422 for pydantic's errors (``ValidationError.errors()``), each naming its field."""
    return invalid([_field(e.get("loc", ()), str(e.get("msg", "invalid"))) for e in errors])


def _field(location: Sequence[Any], message: str) -> tuple[str, str]:
    """A check of the whole model names its field in its message (``address: ...``).

    >>> _field(("body",), "Value error, address: not a valid phone number")
    ('address', 'not a valid phone number')
    >>> _field(("body", "timezone"), "Value error, unknown time zone 'Mars'")
    ('timezone', "unknown time zone 'Mars'")
    """
    path, message = _path(location), message.removeprefix("Value error, ")
    head, sep, rest = message.partition(": ")
    if sep and _FIELD.fullmatch(head):
        path = f"{path}.{head}" if path else head
        message = rest
    return path, message


_FIELD = re.compile(r"[a-z][a-z0-9_]*")


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, error: Problem) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return invalid_input(error.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return Problem(error.status_code, str(error.detail),
                       headers=dict(error.headers or {})).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return Problem(500, "internal error; it has been logged").response()


def _path(location: Sequence[Any]) -> str:
    # FastAPI prefixes "body", "query", "path": keep the field's own path.
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)
