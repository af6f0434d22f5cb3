"""What anyone may read of a published status page, without signing in: the page at a
slug (``/public/status-pages/acme``) or at a custom domain
(``/public/status-pages?domain=status.acme.example``, for the web part). An unpublished
page is answered exactly as a missing one.

The answer is made for visitors and for the page that renders it::

    {"slug": "acme", "title": "Acme", "description": "", "custom_domain": null,
     "status": "partial_outage",
     "history": {"days": 90, "from": "2026-06-02", "to": "2026-08-30"},
     "groups": [{"name": "Web", "status": "partial_outage", "monitors": [
         {"name": "Shop", "status": "outage", "uptime": 0.99871,
          "daily_uptime": [1.0, null, ..., 0.98]}]}],
     "notes": [{"status": "identified", "text": "...", "thread": 1,
                "created_at": "...", "updated_at": null}]}

``daily_uptime`` has one value a day from ``history.from`` to today (UTC), null for days
without checks; ``uptime`` is over those days. Notes are those of the last 30 days, newest
first; notes about the same incident share a ``thread`` number (meaningful within one
answer only: incident ids stay private). Nothing else of a monitor is shown: no target,
address or error message.

It is read in a fixed number of statements however many monitors the page shows, on a
connection of its own that takes no write lock, and may be cached for a few seconds
(``Cache-Control``, and an ``ETag`` that ``If-None-Match`` turns into a 304).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.deps import database
from dozor.api.problems import Problem, invalid
from dozor.checks.domain import normalize_domain
from dozor.core.rollups import DAY
from dozor.core.statuspage import overall, public_state, slug_problem
from dozor.store import queries, status_public

router = APIRouter(prefix="/public", tags=["public status pages"])
HISTORY_DAYS = 90
NOTES_SINCE = timedelta(days=30)
NOTES_LIMIT = 100
CACHE_CONTROL = "public, max-age=5"


async def _reading(request: Request) -> AsyncIterator[AsyncConnection]:
    # Visitors only read: no write transaction, so no place in SQLite's writer queue.
    async with database(request).connect() as conn:
        yield conn


Reading = Annotated[AsyncConnection, Depends(_reading, scope="function")]
NOT_FOUND = "no status page here"


@router.get("/status-pages/{slug}")
async def public_page(slug: str, request: Request, conn: Reading) -> Response:
    """The published page at ``slug``."""
    row = None if slug_problem(slug) else await status_public.published_page(conn, slug=slug)
    return await _answer(conn, row, request)


@router.get("/status-pages")
async def public_page_by_domain(domain: Annotated[str, Query(max_length=253)],
                                request: Request, conn: Reading) -> Response:
    """The published page whose custom domain is ``domain``."""
    try:
        host = normalize_domain(domain)
    except ValueError as error:
        raise invalid([("domain", str(error))]) from None
    return await _answer(conn, await status_public.published_page(conn, domain=host),
                         request)


async def _answer(conn: AsyncConnection, row: Any, request: Request) -> Response:
    if row is None:
        raise Problem(404, NOT_FOUND)
    body = json.dumps(await public_view(conn, row, datetime.now(UTC)),
                      separators=(",", ":"), ensure_ascii=False).encode()
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or tag in tags


async def public_view(conn: AsyncConnection, page: Any, now: datetime) -> dict[str, Any]:
    """A published page as visitors see it (``page``: its row)."""
    rows = await status_public.shown_monitors(conn, page.id)
    today = int(now.timestamp()) // DAY * DAY
    first = today - (HISTORY_DAYS - 1) * DAY
    ids = [row.monitor_id for row in rows if row.monitor_id is not None]
    counts = await queries.daily_counts(conn, ids, first, now) if ids else {}
    notes = await status_public.recent_notes(conn, page.id, now - NOTES_SINCE, NOTES_LIMIT)
    groups = _groups(rows, counts, first)
    return {"slug": page.slug, "title": page.title, "description": page.description,
            "custom_domain": page.custom_domain,
            "status": overall(m["status"] for g in groups for m in g["monitors"]),
            "history": {"days": HISTORY_DAYS, "from": _date(first), "to": _date(today)},
            "groups": groups, "notes": _notes(notes)}


def _groups(rows: Iterable[Any], counts: queries.DayCounts,
            first: int) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    last = None
    for row in rows:
        if row.group_id != last:
            groups.append({"name": row.group_name, "status": "unknown", "monitors": []})
            last = row.group_id
        if row.monitor_id is not None:
            groups[-1]["monitors"].append(_monitor(row, counts.get(row.monitor_id, {}),
                                                   first))
    for group in groups:
        group["status"] = overall(m["status"] for m in group["monitors"])
    return groups


def _monitor(row: Any, days: dict[int, tuple[int, int]], first: int) -> dict[str, Any]:
    history = [days.get(first + k * DAY) for k in range(HISTORY_DAYS)]
    checks = sum(day[0] for day in history if day)
    up = sum(day[1] for day in history if day)
    return {"name": row.name, "status": public_state(row.state),
            "uptime": _ratio(up, checks),
            "daily_uptime": [_ratio(day[1], day[0]) if day else None for day in history]}


def _ratio(up: int, checks: int) -> float | None:
    # Rounded down: one failed check in a hundred thousand must not read as 100%.
    return math.floor(up * 100_000 / checks) / 100_000 if checks else None


def _notes(rows: Iterable[Any]) -> list[dict[str, Any]]:
    threads: dict[int, int] = {}
    return [{"status": row.status, "text": row.body,
             "thread": threads.setdefault(row.incident_id, len(threads) + 1)
             if row.incident_id is not None else None,
             "created_at": row.created_at.isoformat(),
             "updated_at": row.updated_at.isoformat() if row.updated_at else None}
            for row in rows]


def base_url(request: Request) -> str:
    """Where links in mail to subscribers point: the configured public URL, else the
    address this request came to."""
    return str(request.app.state.settings.public_url or request.base_url).rstrip("/")


def _date(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()
