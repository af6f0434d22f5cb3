"""What the pages of alert recipients (contacts, points, policies) share beyond
``web.access``: a route class that sends a reader without a session to the log-in, the
reader and the writer of a form (member or more), checkbox lists, and the API's body
models built from a form.

Recipients are organisation-wide, so a sub-account is refused them here as
``api.subaccounts`` refuses their API paths: it fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from dozor.api.problems import Problem, invalid_input
from dozor.api.security import Principal
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.session import read_form

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
                return access.to_login(request)
        return handler


async def reader(request: Request) -> tuple[Principal, Any]:
    """The person looking at a recipients page and their user row; LoggedOut without a
    session, 403 for a sub-account."""
    who, user = await access.signed_in(request)
    if who is None:
        raise LoggedOut
    access.refuse_sub_account(who)
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
