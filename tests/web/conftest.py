"""Dashboard tests drive the real application over ASGI as a browser would: each person
has their own cookie jar, logs in through the /login form, and posts forms with the form
token the page gave them. The people are the API tests' (``tests/api/conftest.py``): an
owner, a viewer in the owner's organisation, and a stranger with their own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.api import conftest as api
from tests.api.conftest import PASSWORD, PUBLIC_URL, Person

# The API tests' fixtures, made fixtures here too (pytest finds them by module name).
app, client, owner, stranger, viewer = api.app, api.client, api.owner, api.stranger, api.viewer
fresh_limits_and_cheap_hashes, mailbox = api.fresh_limits_and_cheap_hashes, api.mailbox
__all__ = ["app", "client", "fresh_limits_and_cheap_hashes", "mailbox", "owner", "stranger",
           "viewer"]

TOKEN = re.compile(r'name="form_token" value="([0-9a-f]+)"')


@dataclass
class Browser:
    """One person's browser: a cookie jar that keeps the session cookie."""

    http: httpx.AsyncClient

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def form_token(self) -> str:
        found = TOKEN.search((await self.http.get("/account")).text)
        assert found is not None, "no form on the account page"
        return found.group(1)

    async def post(self, path: str, data: dict[str, str | list[str]] | None = None
                   ) -> httpx.Response:
        """Post a form as the page would, with the form token."""
        fields = {"form_token": await self.form_token(), **(data or {})}
        return await self.http.post(path, data=fields)

    def forms(self, page: httpx.Response) -> list[str]:
        """The actions of the page's forms, besides the header's (language, log-out)."""
        actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
        return [a for a in actions if a not in ("/language", "/logout")]


Browse = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def browse(app: FastAPI) -> AsyncIterator[Browse]:
    """``await browse(email)``: a browser logged in as that person (already signed up);
    with ``organisation_id``, in that one of theirs (the log-in form has no such field,
    so that log-in goes through the API, whose answer sets the same cookie)."""
    opened: list[httpx.AsyncClient] = []

    async def open_browser(email: str, organisation_id: int | None = None) -> Browser:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
        opened.append(http)
        if organisation_id is None:
            answer = await http.post("/login", data={"email": email, "password": PASSWORD,
                                                     "next": "/"})
            assert answer.status_code == 303, answer.text
        else:
            answer = await http.post("/api/v1/sessions", json={
                "email": email, "password": PASSWORD, "organisation_id": organisation_id})
            assert answer.status_code == 201, answer.text
        return Browser(http)

    yield open_browser
    for http in opened:
        await http.aclose()


@pytest.fixture
async def owner_browser(browse: Browse, owner: Person) -> Browser:
    return await browse(owner.email)


@pytest.fixture
async def viewer_browser(browse: Browse, viewer: Person) -> Browser:
    return await browse(viewer.email)


@pytest.fixture
async def stranger_browser(browse: Browse, stranger: Person) -> Browser:
    return await browse(stranger.email)
