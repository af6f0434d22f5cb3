"""A monitor's page: its state, uptime for the usual windows (per location too, where it
has several), the latency chart over a chosen range, recent failures with their errors,
incidents and maintenance windows; and the acts on it (pause, resume, add), done by the
same functions as the API's routes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from fastapi import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import monitors as api_monitors
from dozor.api import subaccounts
from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.core.rollups import Rollup
from dozor.core.types import ErrorCode, ResultStatus
from dozor.store import location_figures
from dozor.store import tables as t
from dozor.store.incidents import IncidentFilter, find_incidents
from dozor.web import monitor_chart
from dozor.web.live import Event, regional_event, state_event

RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class Failure:
    at: datetime
    error: str
    message: str
    location: str  # shown where the monitor has several


@dataclass(frozen=True, slots=True)
class Shown:
    row: Any  # the monitor with its state
    target: str
    uptime: dict[str, Rollup]  # combined: over every location's checks
    places: list[location_figures.Place]  # shown only when there are several
    last: location_figures.Last | None  # the newest result from any location
    chart: monitor_chart.Chart
    failures: list[Failure]
    incidents: list[Any]
    windows: list[Any]


def target_of(kind: str, config: dict[str, Any]) -> str:
    """What a monitor watches, in one line.

    >>> target_of("tcp", {"host": "db.internal", "port": 5432})
    'db.internal:5432'
    """
    if "url" in config:
        return str(config["url"])
    if "host" in config:
        return f"{config['host']}:{config['port']}" if "port" in config else str(config["host"])
    for key in ("query_name", "domain"):
        if key in config:
            return str(config[key])
    return kind


async def visible_ids(conn: AsyncConnection, who: Principal) -> frozenset[int]:
    return await subaccounts.visible_monitor_ids(conn, who) or frozenset()


async def current_events(conn: AsyncConnection, who: Principal,
                         monitor_ids: list[int]) -> list[Event]:
    """These monitors of the viewer's as they are now, as ``web.live`` sends them: each
    one's state, and the regional problem of each checked from locations (an empty one
    too, as a page may show one that has cleared since)."""
    if not monitor_ids:
        return []
    m, s = t.monitors.c, t.monitor_state.c
    rows = await conn.execute(
        select(m.id, m.locations, s.state, s.since, s.regional)
        .join(t.monitor_state, s.monitor_id == m.id)
        .where(m.org_id == who.org_id, m.id.in_(monitor_ids)))
    events = []
    for row in rows:
        events.append(state_event(row.id, row.state, row.since))
        if row.locations is not None or row.regional is not None:
            events.append(regional_event(row.id, row.regional or []))
    return events


async def load(conn: AsyncConnection, who: Principal, monitor_id: int,
               range_key: str, here: str) -> Shown | None:
    """``here`` is the server's own location (``DOZOR_LOCATION``)."""
    span = RANGES.get(range_key, RANGES["24h"])
    m, s = t.monitors.c, t.monitor_state.c
    row = (await conn.execute(
        select(t.monitors, s.state, s.since, s.last_checked_at, s.last_latency_ms,
               s.last_message, s.incident_id, s.flapping, s.expires_at, s.regional)
        .join(t.monitor_state, s.monitor_id == m.id)
        .where(m.id == monitor_id, m.org_id == who.org_id))).first()
    if row is None or not who.sees(row.tags or []):
        return None
    now = datetime.now(UTC)
    figures = await location_figures.load(conn, row, here, now)
    # One location (a monitor without locations, checked here alone) needs no table.
    places = figures.places if row.locations is not None or len(figures.places) > 1 else []
    start = now - span
    chart = await monitor_chart.load(conn, monitor_id, [p.name for p in places], range_key,
                                     start, now)
    r = t.results.c
    failed = (await conn.execute(
        select(r.at, r.error, r.detail, t.locations.c.name)
        .outerjoin(t.locations, t.locations.c.id == r.location_id)
        .where(r.monitor_id == monitor_id, r.status == ResultStatus.DOWN)
        .order_by(r.at.desc()).limit(10))).all()
    failures = [Failure(datetime.fromtimestamp(f.at / 1000, UTC),
                        ErrorCode(f.error).name.lower() if f.error else "-",
                        str(json.loads(f.detail).get("message", "")) if f.detail else "",
                        f.name or "-")
                for f in failed]
    incidents = await find_incidents(conn, who.org_id, IncidentFilter(monitor_id=monitor_id),
                                     limit=10)
    windows = [w for w in (await conn.execute(
        select(t.maintenance_windows).where(t.maintenance_windows.c.org_id == who.org_id)
    )).all() if w.all_monitors or row.name in (w.monitor_names or [])
        or set(w.tags or []) & set(row.tags or [])]
    return Shown(row, target_of(row.kind, row.config or {}), figures.combined, places,
                 figures.last, chart, failures, list(incidents), windows)


async def set_paused(conn: AsyncConnection, who: Principal, monitor_id: int,
                     paused: bool) -> None:
    action = api_monitors.pause_monitor if paused else api_monitors.resume_monitor
    await action(monitor_id, who, conn)


KIND_TARGETS = {"http": "url", "ping": "host", "domain": "domain", "dns": "query-name"}


async def create(conn: AsyncConnection, who: Principal,
                 form: dict[str, str]) -> tuple[int | None, dict[str, str]]:
    """Create from the form's fields; (id, {}) or (None, {field: message})."""
    kind = form.get("kind", "http")
    body: dict[str, Any] = {"name": form.get("name", "").strip(), "kind": kind,
                            "interval": form.get("interval", "").strip() or "60s"}
    target = form.get("target", "").strip()
    if kind in ("tcp", "tls"):
        host, _, port = target.rpartition(":")
        body |= {"host": host or target, "port": int(port) if port.isdigit() else port}
    elif kind == "heartbeat":
        body["period"] = body.pop("interval")
    else:
        body[KIND_TARGETS.get(kind, "url")] = target
    if form.get("tags", "").strip():
        body["tags"] = [tag.strip() for tag in form["tags"].split(",") if tag.strip()]
    try:
        created = await api_monitors.create_monitor(who, conn, Response(), body)
    except Problem as problem:
        errors = {e["field"].split(".")[0]: e["message"] for e in problem.errors} \
            or {"name": problem.detail}
        for field in ("url", "host", "port", "domain", "query-name"):
            if field in errors:
                errors["target"] = errors.pop(field)
        if "period" in errors:
            errors["interval"] = errors.pop("period")
        return None, errors
    return int(created["id"]), {}


async def config_yaml(conn: AsyncConnection, who: Principal, monitor_id: int
                      ) -> tuple[str, int] | None:
    """The monitor as the YAML a file would hold (every option of its kind), and its
    version; None when the viewer may not see it."""
    try:
        view = await api_monitors.get_monitor(monitor_id, who, conn, Response())
    except Problem:
        return None
    mapping = {key: value for key, value in view.items()
               if key not in SERVER_KEYS and value is not None}
    return yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True), int(view["version"])


# What the API's view adds to a monitor's own fields: the server's, not editable.
SERVER_KEYS = frozenset({"id", "version", "state", "since", "last_checked_at",
                         "last_latency_ms", "last_message", "open_incident_id", "regional",
                         "push_path"})


async def replace(conn: AsyncConnection, who: Principal, monitor_id: int, text: str,
                  version: str) -> dict[str, str]:
    """Save the edited YAML; {} or {field: message} (nothing saved then)."""
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        return {"config": f"{where}not valid YAML ({getattr(error, 'problem', error)})"}
    if not isinstance(body, dict):
        return {"config": "must be a mapping of fields (name: ..., kind: ...)"}
    try:
        await api_monitors.replace_monitor(monitor_id, who, conn, Response(), body,
                                           f'"{version}"')
    except Problem as problem:
        if problem.status == 412:
            return {"config": "someone changed this monitor since you opened it; "
                              "reload to see their change"}
        return {e["field"]: e["message"] for e in problem.errors} or {"config": problem.detail}
    return {}
