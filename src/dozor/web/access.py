"""What the dashboard's pages beyond the foundation share: who is looking, the way to the
log-in, the refusal of sub-accounts on organisation-wide pages, and a problem from the
API's functions turned into errors shown beside a form's fields.

>>> field_errors(Problem(422, "x", errors=[{"field": "monitors.0", "message": "no monitor"}]))
{'monitors': 'no monitor'}
>>> field_errors(Problem(409, "the last owner cannot be removed"))
{'': 'the last owner cannot be removed'}
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.api import paging
from dozor.api.deps import MAX_ID
from dozor.api.problems import Problem, invalid_input
from dozor.api.security import Principal
from dozor.store import account_tables as a
from dozor.web.render import environment, render
from dozor.web.session import viewer

FORM_ERROR = ""  # the key of an error that belongs to the whole form, not one field


def span(seconds: int | None) -> str:
    """A duration in its two largest units: ``1h 5m``, ``2d 3h``, ``45s``.

    >>> span(3900), span(183600), span(45)
    ('1h 5m', '2d 3h', '45s')
    """
    if seconds is None:
        return "-"
    parts: list[str] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or (size == 1 and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


environment.filters["span"] = span


def database(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.database
    return engine


async def signed_in(request: Request) -> tuple[Principal | None, Any]:
    """The logged-in person and their user row (name, language), or (None, None)."""
    async with database(request).connect() as conn:
        who = await viewer(request, conn)
        user = None if who is None else (await conn.execute(
            select(a.users).where(a.users.c.id == who.user_id))).first()
    return who, user


async def poster(request: Request) -> Principal:
    """The person behind a POST (its form token already checked); 401 without one. A
    form is never posted to a log-in page: a lapsed session would lose what was typed
    either way, and a 401 says why."""
    who, _ = await signed_in(request)
    if who is None:
        raise Problem(401, "log in again: the session has ended")
    return who


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def see_other(path: str) -> RedirectResponse:
    """Post/redirect/get: a reload after a form shows the page, never posts again."""
    return RedirectResponse(path, status_code=303)


def refuse_sub_account(who: Principal) -> None:
    """Organisation-wide pages (maintenance, the delivery log, the team) are refused to a
    sub-account, as ``api.subaccounts`` refuses their API paths: it fails closed."""
    if who.restricted:
        raise Problem(403, "a sub-account sees only its own monitors and their incidents")


def forbidden_page(request: Request, who: Principal, user: Any) -> Response:
    return render(request, "forbidden.html", {"who": who, "user": user}, status=403)


def not_found_page(request: Request, who: Principal, user: Any) -> Response:
    return render(request, "not_found.html", {"who": who, "user": user}, status=404)


def field_errors(problem: Problem) -> dict[str, str]:
    """{field: message} of a problem; the first part of a dotted path names the form's
    field (``monitors.0`` is the monitors field); a problem naming no field is the form's."""
    errors = {e["field"].split(".")[0]: e["message"] for e in problem.errors}
    return errors or {FORM_ERROR: problem.detail}


def model_errors(error: ValidationError) -> dict[str, str]:
    """A pydantic model's errors, named as the API would name them (FastAPI puts "body"
    before a body's paths, and ``invalid_input`` takes it off again: a field named
    ``body`` stays itself)."""
    located = [{**e, "loc": ("body", *e.get("loc", ()))} for e in error.errors()]
    return field_errors(invalid_input(located))


def id_param(query: str | None) -> int | None:
    """An id from a page's query (a filter, a page's start); anything else is no filter,
    so a hand-edited address shows a page rather than an error.

    >>> id_param("12"), id_param("x"), id_param("99999999999")
    (12, None, None)
    """
    return int(query) if query and query.isdigit() and 1 <= int(query) <= MAX_ID else None


def cursor_param(query: str | None) -> str | None:
    """A list's cursor as the API gave it, or None (the first page) for anything else."""
    try:
        return query if paging.decode(query) is not None else None
    except Problem:
        return None
