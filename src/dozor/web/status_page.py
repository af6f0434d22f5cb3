"""Public status pages as HTML, and their email subscriptions.

``/status/<slug>`` shows a published page (anything else is a 404, as in the public JSON
read, whose statements and view it reuses: public names and states only). A page with a
custom domain is also shown at ``/`` of that host: the dashboard's overview asks
:func:`status_for_host` first. Visitors subscribe with the form on the page; the mailed
link confirms (its GET shows a button and only the POST confirms, because mail scanners
open links), and every note's mail carries a one-click unsubscribe link.

Subscribing answers the same whatever the address's state, so the form does not tell
who is subscribed; it is rate-limited per client and per address.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.api.problems import Problem
from dozor.api.ratelimit import RateLimit, enforce
from dozor.api.security import client_ip
from dozor.api.status_public import CACHE_CONTROL, HISTORY_DAYS, base_url, public_view
from dozor.checks.domain import normalize_domain
from dozor.core.statuspage import slug_problem
from dozor.notify import subscriber_mail
from dozor.notify.points import AddressError, normalise_address
from dozor.store import status_public, status_subscribers
from dozor.store.db import write_transaction
from dozor.web.render import language_of, render
from dozor.web.svg import uptime_bar

router = APIRouter(include_in_schema=False)
# A person subscribes once or twice; more from one client or to one address is a tool
# mailing strangers through us.
PER_CLIENT = RateLimit("subscribe_by_client", 10, 3600.0)
PER_ADDRESS = RateLimit("subscribe_by_address", 3, 3600.0)


def _database(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.database
    return engine


async def status_for_host(request: Request) -> Response | None:
    """The published page whose custom domain is the request's host, or None (then the
    caller shows what it shows at that path). The dashboard's own host costs no query."""
    try:
        domain = normalize_domain(urlsplit("//" + request.headers.get("host", "")).hostname
                                  or "")
    except ValueError:  # no host, an IP address, a bare name: never a page's domain
        return None
    own = urlsplit(request.app.state.settings.public_url or "").hostname
    if domain == own:
        return None
    async with _database(request).connect() as conn:
        row = await status_public.published_page(conn, domain=domain)
        if row is None:
            return None
        return await _show(request, conn, row)


@router.get("/status/{slug}")
async def status_page(slug: str, request: Request) -> Response:
    async with _database(request).connect() as conn:
        row = None if slug_problem(slug) else await status_public.published_page(
            conn, slug=slug)
        if row is None:
            return render(request, "not_found.html", {}, status=404)
        return await _show(request, conn, row)


async def _show(request: Request, conn: AsyncConnection, row: Any,
                error: str | None = None, status: int = 200) -> Response:
    """The page (``error``: ``address`` or ``busy``, for the subscription form)."""
    view = await public_view(conn, row, datetime.now(UTC))
    for group in view["groups"]:
        for monitor in group["monitors"]:
            monitor["bar"] = uptime_bar(monitor["daily_uptime"], HISTORY_DAYS)
            monitor["percent"] = percent(monitor["uptime"])
    subscribed = request.query_params.get("subscribed") == "1"
    answer = render(request, "status.html", {"page": view, "error": error,
                                             "subscribed": subscribed}, status=status)
    if status == 200:
        # An outage brings many visitors at once: a proxy or browser may keep the page as
        # the public read's JSON is kept. It holds nobody's data (no form token: visitors
        # have no session), only the language chosen by these headers.
        answer.headers["Cache-Control"] = CACHE_CONTROL
        answer.headers["Vary"] = "Accept-Language, Cookie"
    return answer


@router.post("/status/{slug}")
async def subscribe(slug: str, request: Request) -> Response:
    """Ask for the page's news at an address: a confirmation link is mailed to it."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    async with write_transaction(_database(request)) as conn:
        page = None if slug_problem(slug) else await status_subscribers.published_page(conn, slug)
        if page is None:
            return render(request, "not_found.html", {}, status=404)
        try:
            email = normalise_address("email", form.get("email", ""))
            await enforce(request, (PER_CLIENT, client_ip(request) or "-"),
                          (PER_ADDRESS, email))
        except AddressError:
            return await _show(request, conn, page, error="address", status=422)
        except Problem as problem:  # too many requests
            answer = await _show(request, conn, page, error="busy", status=problem.status)
            answer.headers.update(problem.headers or {})
            return answer
        language = language_of(request, None)
        now = datetime.now(UTC)
        pending = await status_subscribers.request(conn, page.id, email, language, now)
        if pending is not None:
            await subscriber_mail.confirmation(conn, page.org_id, pending, page.title,
                                               base_url(request), language, now)
    return RedirectResponse(f"/status/{slug}?subscribed=1#subscribe", status_code=303)


def percent(share: float | None) -> str | None:
    """Uptime with two decimals, rounded down: 99.999% must not read as 100.00%.

    >>> percent(0.99999), percent(1.0), percent(None)
    ('99.99', '100.00', None)
    """
    return None if share is None else f"{math.floor(round(share * 1e6) / 100) / 100:.2f}"


@router.get("/status/confirm/{token}")
async def confirm_page(token: str, request: Request) -> Response:
    return render(request, "status_link.html", {"action": "confirm", "done": False})


@router.post("/status/confirm/{token}")
async def confirm(token: str, request: Request) -> Response:
    async with write_transaction(_database(request)) as conn:
        done = await status_subscribers.confirm(conn, token, datetime.now(UTC),
                                                client_ip(request),
                                                request.headers.get("user-agent"))
    return render(request, "status_link.html", {"action": "confirm", "done": done},
                  status=200 if done else 404)


@router.get("/status/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request) -> Response:
    return render(request, "status_link.html", {"action": "unsubscribe", "done": False})


@router.post("/status/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request) -> Response:
    """The page's button, and mail clients' one-click POST (RFC 8058)."""
    async with write_transaction(_database(request)) as conn:
        done = await status_subscribers.unsubscribe(conn, token, datetime.now(UTC))
    return render(request, "status_link.html", {"action": "unsubscribe", "done": done},
                  status=200 if done else 404)
