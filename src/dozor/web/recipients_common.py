"""What the pages of alert recipients (contacts, points, policies) share: who is looking,
the refusals (sub-accounts, viewers' forms), and a problem from the API's functions shown
as errors beside a form's fields.

Recipients are organisation-wide, so a sub-account is refused them here as
``api.subaccounts`` refuses their API paths: it fails closed.

>>> field_errors(Problem(422, "x", errors=[{"field": "contact_ids.0", "message": "no"}]))
{'contact_ids': 'no'}
>>> field_errors(Problem(409, "the contact is the only recipient"))
{'': 'the contact is the only recipient'}
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.api.problems import Problem, invalid_input
from dozor.api.security import Principal
from dozor.store import account_tables as a
from dozor.web.errors import PageRoute
from dozor.web.session import read_form, viewer

FORM_ERROR = ""  # the key of an error that belongs to the whole form, not one field
SUB_ACCOUNT = "a sub-account sees only its own monitors and their incidents"
Spec = TypeVar("Spec", bound=BaseModel)


class LoggedOut(Exception):
    """No session: a page answers with the way to the log-in."""


class RecipientsRoute(PageRoute):
    """A page route that answers a reader without a session with the log-in, and a
    ``Problem`` with a page saying why (``PageRoute``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoggedOut:
                return to_login(request)
        return handler


def database(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.database
    return engine


async def reader(request: Request) -> tuple[Principal, Any]:
    """The person looking at a recipients page and their user row; LoggedOut without a
    session, 403 for a sub-account."""
    async with database(request).connect() as conn:
        who = await viewer(request, conn)
        if who is None:
            raise LoggedOut
        user = (await conn.execute(select(a.users).where(a.users.c.id == who.user_id))).first()
    if who.restricted:
        raise Problem(403, SUB_ACCOUNT)
    return who, user


async def writer(request: Request) -> tuple[dict[str, str], Principal]:
    """A posted form (its token checked) and the member behind it. A lapsed session is a
    401 rather than a trip to the log-in: the typed form would be lost either way."""
    form = await read_form(request)
    try:
        who, _ = await reader(request)
    except LoggedOut:
        raise Problem(401, "log in again: the session has ended") from None
    who.require("member", write=True)
    return form, who


async def form_list(request: Request, name: str) -> list[str]:
    """Every value of a field posted more than once (checkboxes); ``read_form`` keeps the
    last only. Starlette keeps the body, so reading it again is free."""
    body = (await request.body()).decode("utf-8", "replace")
    return [value for key, value in parse_qsl(body) if key == name]


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def see_other(path: str) -> RedirectResponse:
    """Post/redirect/get: a reload after a form shows the page, never posts again."""
    return RedirectResponse(path, status_code=303)


def field_errors(problem: Problem) -> dict[str, str]:
    """{field: message}; the first part of a dotted path names the form's field, and a
    problem naming no field belongs to the whole form."""
    errors = {e["field"].split(".")[0]: e["message"] for e in problem.errors}
    return errors or {FORM_ERROR: problem.detail}


def spec(model: type[Spec], values: dict[str, Any]) -> Spec:
    """The API's body model from a form's values; a bad field is the 422 the API would
    answer (FastAPI puts "body" before a body's paths and ``invalid_input`` drops it)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise invalid_input([{**e, "loc": ("body", *e.get("loc", ()))}
                             for e in error.errors()]) from None


def names(text: str) -> list[str]:
    """Comma-separated names, trimmed, empty ones dropped.

    >>> names(" shop, api ,, ")
    ['shop', 'api']
    """
    return [part.strip() for part in text.split(",") if part.strip()]
