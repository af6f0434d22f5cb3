"""Who is looking at a page: the session cookie the log-in form sets (the same sessions
as ``POST /api/v1/sessions``), and the form token that proves a POST came from our page.

Cookies are ``SameSite=Lax``, so a cross-site form does not carry them; the form token is
the second lock, derived from the session so it needs no storage.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.api.security import SESSION_COOKIE, Principal, authenticate, digest


async def viewer(request: Request, conn: AsyncConnection) -> Principal | None:
    """The logged-in person, or None (no cookie, or an expired or ended session)."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await authenticate(conn, request)
    except Problem:
        return None


def form_token(request: Request) -> str:
    return digest("form:" + request.cookies.get(SESSION_COOKIE, ""))[:32]


async def read_form(request: Request) -> dict[str, str]:
    """A posted form (urlencoded), after checking its form token: 403 without it."""
    body = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    if not hmac.compare_digest(form.pop("form_token", ""), form_token(request)):
        raise Problem(403, "the form is out of date; reload the page and try again")
    return form
