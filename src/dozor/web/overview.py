"""The overview's data: one page of monitors, filtered and sorted in SQL, with their
90-day uptime and 24-hour latency read for that page only (a handful of statements
however many monitors an account has)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from dozor.api.security import Principal
from dozor.core.rollups import DAY, HOUR
from dozor.store import queries
from dozor.store import tables as t
from dozor.web.svg import sparkline, uptime_bar

PAGE_SIZE = 50
SORTS = ("name", "state", "latency")
STATES = ("down", "pending", "up", "maintenance", "paused", "unknown")
REGIONAL = "regional"  # a filter beside the states: some locations see it down, too few
BAR_DAYS = 90


@dataclass(frozen=True, slots=True)
class Filters:
    q: str = ""
    tag: str = ""
    state: str = ""
    sort: str = "name"
    page: int = 1

    @classmethod
    def from_query(cls, query: dict[str, str]) -> Filters:
        """Unknown values fall back to defaults: a URL never makes the page fail."""
        page = query.get("page", "1")
        return cls(q=query.get("q", "")[:200].strip(), tag=query.get("tag", "")[:64].strip(),
                   state=query.get("state", "")
                   if query.get("state") in (*STATES, REGIONAL) else "",
                   sort=query.get("sort", "name") if query.get("sort") in SORTS else "name",
                   page=min(int(page), 10_000) if page.isdigit() and int(page) > 0 else 1)


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    name: str
    kind: str
    tags: list[str]
    state: str
    since: datetime | None
    latency_ms: float | None
    message: str | None
    regional: list[str]  # locations that see it down, too few to confirm an outage
    located: bool  # checked from locations: a regional problem may appear while shown
    bar: str  # SVG
    spark: str  # SVG
    uptime_90d: float | None


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    total: int
    counts: dict[str, int]  # by state, and those with a regional problem, for the account
    filters: Filters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _has_tag(tag: str) -> ColumnElement[bool]:
    # Tags are a JSON list; its text holds each tag quoted, on SQLite and PostgreSQL alike.
    return cast(t.monitors.c.tags, String).like(f'%"{_escape_like(tag)}"%', escape="\\")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def load(conn: AsyncConnection, viewer: Principal, filters: Filters,
               now: datetime | None = None) -> Page:
    now = now or datetime.now(UTC)
    m, s = t.monitors.c, t.monitor_state.c
    scope: list[ColumnElement[bool]] = [m.org_id == viewer.org_id]
    if viewer.monitor_tags is not None:  # a sub-account sees its tags' monitors only
        scope.append(or_(*[_has_tag(tag) for tag in viewer.monitor_tags]))
    counts: dict[str, int] = {REGIONAL: 0}
    for state, n, regional in await conn.execute(
            select(s.state, func.count(), func.count(s.regional)).select_from(t.monitors)
            .join(t.monitor_state, s.monitor_id == m.id).where(*scope).group_by(s.state)):
        counts[state] = n
        counts[REGIONAL] += regional
    where = list(scope)
    if filters.q:
        where.append(func.lower(m.name).like(f"%{_escape_like(filters.q.lower())}%",
                                             escape="\\"))
    if filters.tag:
        where.append(_has_tag(filters.tag))
    if filters.state == REGIONAL:
        where.append(s.regional.is_not(None))
    elif filters.state:
        where.append(s.state == filters.state)
    base = select(t.monitors).join(t.monitor_state, s.monitor_id == m.id).where(*where)
    total = (await conn.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    orders: dict[str, list[Any]] = {
        "name": [m.name],
        "state": [case({state: i for i, state in enumerate(STATES)}, value=s.state), m.name],
        "latency": [s.last_latency_ms.desc().nulls_last(), m.name],
    }
    order = orders[filters.sort]
    rows = (await conn.execute(
        select(m.id, m.name, m.kind, m.tags, s.state, s.since, s.last_latency_ms,
               s.last_message, s.regional, m.locations)
        .join(t.monitor_state, s.monitor_id == m.id).where(*where)
        .order_by(*order, m.id).limit(PAGE_SIZE)
        .offset((filters.page - 1) * PAGE_SIZE))).all()
    ids = [row.id for row in rows]
    today = int(now.timestamp()) // DAY * DAY
    first_day = today - (BAR_DAYS - 1) * DAY
    days = await queries.daily_counts(conn, ids, first_day, now) if ids else {}
    hour = int(now.timestamp()) // HOUR * HOUR
    latency = await queries.hourly_latency(conn, ids, hour - 23 * HOUR) if ids else {}
    page_rows = []
    for row in rows:
        counted = days.get(row.id, {})
        shares = [counted[d][1] / counted[d][0] if d in counted and counted[d][0] else None
                  for d in range(first_day, today + 1, DAY)]
        checks = sum(c for c, _ in counted.values())
        ups = sum(u for _, u in counted.values())
        hours = latency.get(row.id, {})
        page_rows.append(Row(
            row.id, row.name, row.kind, list(row.tags or []), row.state, row.since,
            row.last_latency_ms, row.last_message, list(row.regional or []),
            row.locations is not None,
            uptime_bar(shares, BAR_DAYS),
            sparkline([hours.get(h) for h in range(hour - 23 * HOUR, hour + 1, HOUR)]),
            ups / checks if checks else None))
    return Page(page_rows, total, counts, filters)
