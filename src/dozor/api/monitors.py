"""Monitors: list, create, read, replace, change, pause, resume, delete, apply YAML;
their results (paged by time), uptime (any range, from rollups) and figures per location.

A monitor's body is what a YAML file says about it (kebab-case keys, the kind's own
fields beside the common ones), so the API, ``dozor apply`` and ``dozor export`` agree.
Every monitor carries a ``version``; changing one needs ``If-Match`` with the version read,
so two editors never silently overwrite each other (412 when it moved on, 428 without it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging, plans, subaccounts
from dozor.api.deps import AppSettings, Caller, Connection, Id
from dozor.api.paging import Limit, aware
from dozor.api.problems import Problem, invalid
from dozor.api.security import Principal
from dozor.api.versions import check_version, etag
from dozor.config.apply import apply_plan, make_plan
from dozor.config.specs import MonitorSpec, SpecError, parse_monitor, spec_from_row, spec_to_mapping
from dozor.config.yamlfile import ConfigFileError, load_text
from dozor.core.rollups import Rollup
from dozor.core.types import ErrorCode, ResultStatus
from dozor.store import location_figures, queries
from dozor.store import monitors as store
from dozor.store import tables as t

router = APIRouter(tags=["monitors"])


@router.get("/monitors")
async def list_monitors(caller: Caller, conn: Connection, limit: Limit = 100,
                        cursor: str | None = None, tag: str | None = None,
                        state: str | None = None, regional: bool | None = None
                        ) -> dict[str, Any]:
    """Monitors by id; ``regional=true`` keeps those some locations see down, too few to
    confirm an outage (``false``: the others)."""
    after = paging.decode(cursor) or 0
    m, s = t.monitors.c, t.monitor_state.c
    query = (select(t.monitors, s.state, s.since, s.last_checked_at, s.last_latency_ms,
                    s.last_message, s.incident_id, s.regional)
             .join(t.monitor_state, s.monitor_id == m.id)
             .where(m.org_id == caller.org_id, m.id > after).order_by(m.id).limit(limit + 1))
    if state:
        query = query.where(s.state == state)
    if regional is not None:
        query = query.where(s.regional.is_not(None) if regional else s.regional.is_(None))
    visible = await subaccounts.visible_monitor_ids(conn, caller)
    if visible is not None:
        query = query.where(m.id.in_(visible))
    rows = (await conn.execute(query)).all()
    items = [_view(r) for r in rows[:limit] if not tag or tag in r.tags]
    more = len(rows) > limit
    return {"items": items, "next_cursor": paging.encode(rows[limit - 1].id) if more else None}


@router.post("/monitors", status_code=201)
async def create_monitor(caller: Caller, conn: Connection, response: Response,
                         body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    caller.require("member", write=True)
    spec = _parse(body)
    subaccounts.check_tags(caller, spec.fields.tags)
    await plans.check_monitor(conn, caller.org_id, spec.fields.interval, adding=True)
    if await store.find_monitor(conn, spec.name, caller.org_id) is not None:
        raise Problem(409, f"name: a monitor named {spec.name!r} exists",
                      errors=[{"field": "name", "message": "already used"}])
    monitor_id = await store.create_monitor(conn, spec, caller.org_id)
    view = _view(await _row(conn, caller, monitor_id))
    response.headers["ETag"] = etag(view["version"])
    response.headers["Location"] = f"/api/v1/monitors/{monitor_id}"
    return view


@router.get("/monitors/{monitor_id}")
async def get_monitor(monitor_id: Id, caller: Caller, conn: Connection,
                      response: Response) -> dict[str, Any]:
    view = _view(await _row(conn, caller, monitor_id))
    response.headers["ETag"] = etag(view["version"])
    return view


@router.put("/monitors/{monitor_id}")
async def replace_monitor(monitor_id: Id, caller: Caller, conn: Connection,
                          response: Response, body: Annotated[dict[str, Any], Body()],
                          if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Replace a monitor with this body (send every field you want to keep)."""
    return await _change(conn, caller, monitor_id, body, if_match, response)


@router.patch("/monitors/{monitor_id}")
async def patch_monitor(monitor_id: Id, caller: Caller, conn: Connection,
                        response: Response, body: Annotated[dict[str, Any], Body()],
                        if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``null`` removes a field)."""
    row = await _row(conn, caller, monitor_id)
    merged = spec_to_mapping(spec_from_row(row)) | body
    return await _change(conn, caller, monitor_id,
                         {k: v for k, v in merged.items() if v is not None}, if_match, response)


async def _change(conn: AsyncConnection, caller: Principal, monitor_id: int, body: dict[str, Any],
                  if_match: str | None, response: Response) -> dict[str, Any]:
    caller.require("member", write=True)
    row = await _row(conn, caller, monitor_id)
    check_version("monitor", row.revision, if_match)
    spec = _parse(body)
    subaccounts.check_tags(caller, spec.fields.tags)
    await plans.check_monitor(conn, caller.org_id, spec.fields.interval, adding=False)
    other = await store.find_monitor(conn, spec.name, caller.org_id)
    if other is not None and other.id != monitor_id:
        raise Problem(409, f"name: a monitor named {spec.name!r} exists",
                      errors=[{"field": "name", "message": "already used"}])
    await store.update_monitor(conn, monitor_id, spec, managed_by=row.managed_by)
    view = _view(await _row(conn, caller, monitor_id))
    response.headers["ETag"] = etag(view["version"])
    return view


@router.post("/monitors/{monitor_id}/pause")
async def pause_monitor(monitor_id: Id, caller: Caller, conn: Connection) -> dict[str, Any]:
    return await _set_paused(conn, caller, monitor_id, True)


@router.post("/monitors/{monitor_id}/resume")
async def resume_monitor(monitor_id: Id, caller: Caller, conn: Connection) -> dict[str, Any]:
    return await _set_paused(conn, caller, monitor_id, False)


async def _set_paused(conn: AsyncConnection, caller: Principal, monitor_id: int,
                      paused: bool) -> dict[str, Any]:
    caller.require("member", write=True)
    await _row(conn, caller, monitor_id)
    await store.set_paused(conn, monitor_id, paused)
    return _view(await _row(conn, caller, monitor_id))


@router.delete("/monitors/{monitor_id}", status_code=204)
async def delete_monitor(monitor_id: Id, caller: Caller, conn: Connection,
                         if_match: Annotated[str | None, Header()] = None) -> None:
    caller.require("member", write=True)
    row = await _row(conn, caller, monitor_id)
    if if_match is not None:
        check_version("monitor", row.revision, if_match)
    await store.delete_monitor(conn, monitor_id)


@router.post("/monitors/apply")
async def apply_yaml(caller: Caller, conn: Connection,
                     body: Annotated[str, Body(media_type="application/yaml")],
                     dry_run: bool = False) -> dict[str, Any]:
    """Bulk apply of the YAML format ``dozor apply`` reads; ``dry_run`` shows the plan."""
    caller.require("member", write=True)
    subaccounts.require_whole_organisation(caller)
    try:
        document = load_text(body)
        plan = await make_plan(conn, document, org_id=caller.org_id)
    except ConfigFileError as error:
        raise invalid([(p.split(": ", 1)[0], p.split(": ", 1)[-1])
                       for p in str(error).splitlines()]) from None
    index = {spec.name: i for i, spec in enumerate(document.monitors)}
    await plans.check_monitors(
        conn, caller.org_id,
        [(f"monitors[{index[spec.name]}].interval", spec.fields.interval)
         for spec in (*plan.create, *(spec for _, spec, _ in plan.update))],
        added=len(plan.create) - len(plan.remove))
    if not dry_run:
        await apply_plan(conn, plan, org_id=caller.org_id)
    return {"dry_run": dry_run, "changes": plan.lines(), "unchanged": plan.unchanged}


@router.get("/monitors/{monitor_id}/results")
async def results(monitor_id: Id, caller: Caller, conn: Connection, limit: Limit = 100,
                  cursor: str | None = None, start: datetime | None = None,
                  end: datetime | None = None) -> dict[str, Any]:
    """Raw results, newest first, within [start, end)."""
    await _row(conn, caller, monitor_id)
    r = t.results.c
    query = select(t.results).where(r.monitor_id == monitor_id).order_by(r.at.desc())
    before = paging.decode(cursor, paging.TIME_RANGE)
    upper = min(x for x in (before, _ms(end)) if x is not None) if (before or end) else None
    if upper is not None:
        query = query.where(r.at < upper)
    if start is not None:
        query = query.where(r.at >= _ms(start))
    rows = (await conn.execute(query.limit(limit + 1))).all()
    return paging.page(rows, limit, _result, lambda row: int(row.at))


@router.get("/monitors/{monitor_id}/uptime")
async def uptime(monitor_id: Id, caller: Caller, conn: Connection,
                 start: datetime | None = None, end: datetime | None = None
                 ) -> dict[str, Any]:
    """Uptime and latency from rollups: for [start, end), or the usual four windows."""
    await _row(conn, caller, monitor_id)
    now = datetime.now(UTC)
    if start is not None or end is not None:
        windows = {"range": (aware(start) or now - timedelta(days=1), aware(end) or now)}
    else:
        windows = {label: (now - span, now) for label, span in location_figures.WINDOWS}
    return {label: _rollup(await queries.uptime(conn, monitor_id, a, b))
            for label, (a, b) in windows.items()}


@router.get("/monitors/{monitor_id}/locations")
async def locations(monitor_id: Id, caller: Caller, conn: Connection,
                    settings: AppSettings) -> dict[str, Any]:
    """Each location's view of the monitor (up, pending, down, maintenance, stale or
    unknown, rebuilt from its newest results), its last check, and its uptime and latency
    for the usual windows; ``combined`` is the same over every location's checks."""
    row = await _row(conn, caller, monitor_id)
    figures = await location_figures.load(conn, row, settings.location)
    return {"state": row.state, "regional": row.regional,
            "combined": {**_last(figures.last), "uptime": _windows(figures.combined)},
            "locations": [{"name": place.name, "assigned": place.assigned, "view": place.view,
                           **_last(place.last), "uptime": _windows(place.uptime)}
                          for place in figures.places]}


def _parse(body: dict[str, Any]) -> MonitorSpec:
    try:
        return parse_monitor(body)
    except SpecError as error:
        raise invalid([(".".join(map(str, p.path)), p.message)
                       for p in error.problems]) from None


async def _row(conn: AsyncConnection, caller: Principal, monitor_id: int) -> Any:
    m, s = t.monitors.c, t.monitor_state.c
    row = (await conn.execute(
        select(t.monitors, s.state, s.since, s.last_checked_at, s.last_latency_ms,
               s.last_message, s.incident_id, s.regional)
        .join(t.monitor_state, s.monitor_id == m.id)
        .where(m.id == monitor_id, m.org_id == caller.org_id))).first()
    # Another organisation's monitor, or one beyond a sub-account's tags, is as absent as
    # a deleted one.
    if row is None or not caller.sees(row.tags):
        raise Problem(404, f"no monitor {monitor_id}")
    return row


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, **spec_to_mapping(spec_from_row(row)), "version": row.revision,
            "paused": row.paused, "state": row.state,
            "since": row.since.isoformat() if row.since else None,
            "last_checked_at": row.last_checked_at.isoformat() if row.last_checked_at else None,
            "last_latency_ms": row.last_latency_ms, "last_message": row.last_message,
            "open_incident_id": row.incident_id,
            # Locations seeing it down, too few to confirm an outage (core.quorum).
            "regional": row.regional,
            "push_path": f"/ping/{row.push_token}" if row.push_token else None}


def _result(row: Any) -> dict[str, Any]:
    return {"at": datetime.fromtimestamp(row.at / 1000, UTC).isoformat(),
            "location_id": row.location_id, "status": ResultStatus(row.status).name.lower(),
            "latency_ms": row.latency_ms,
            "error": ErrorCode(row.error).name.lower() if row.error else None}


def _last(last: location_figures.Last | None) -> dict[str, Any]:
    return {"last_checked_at": last.at.isoformat() if last else None,
            "last_status": last.status.name.lower() if last else None,
            "last_latency_ms": last.latency_ms if last else None,
            "last_error": last.error.name.lower() if last and last.error else None}


def _windows(rollups: dict[str, Rollup]) -> dict[str, Any]:
    return {label: _rollup(rollup) for label, rollup in rollups.items()}


def _rollup(rollup: Rollup) -> dict[str, Any]:
    percentiles = {f"p{q}": rollup.histogram.quantile(q / 100) for q in (50, 95, 99)} \
        if rollup.timed else {"p50": None, "p95": None, "p99": None}
    return {"checks": rollup.checks, "up": rollup.up, "uptime": rollup.uptime,
            "latency_ms": {"avg": rollup.latency_avg, "min": rollup.latency_min,
                           "max": rollup.latency_max, **percentiles}}


def _ms(value: datetime | None) -> int | None:
    moment = aware(value)
    return int(moment.timestamp() * 1000) if moment is not None else None
