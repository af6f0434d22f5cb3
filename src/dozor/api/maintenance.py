"""Maintenance windows: list, create, read, replace, change, delete.

A window's body is what a YAML file says about it (``name``, ``start`` and ``end`` or
``cron`` and ``duration``, ``timezone``, and ``monitors`` by name, ``tags`` or
``all-monitors``), validated by the same spec, so the API, ``dozor apply`` and
``dozor export`` agree. The API also takes ``monitor-ids``: they are stored as the
monitors' names, as the YAML form targets them. Every change bumps the configuration
revision, so a running server applies it within its reload interval. Versions and
``If-Match`` work as for monitors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging
from dozor.api.deps import MAX_ID, Caller, Connection, Id
from dozor.api.paging import Cursor, Limit
from dozor.api.problems import Problem, invalid
from dozor.api.security import Principal, client_ip
from dozor.api.versions import check_version, etag
from dozor.config.specs import (
    MaintenanceSpec,
    SpecError,
    maintenance_from_row,
    maintenance_to_mapping,
    parse_maintenance,
)
from dozor.privacy import audit
from dozor.store import monitors as store
from dozor.store import tables as t

router = APIRouter(tags=["maintenance"])
Window = Annotated[dict[str, Any], Body(openapi_examples={"nightly": {"value": {
    "name": "Nightly deploy", "cron": "0 3 * * *", "duration": "30m",
    "timezone": "Europe/Warsaw", "monitors": ["shop"], "tags": ["web"]}}})]
IfMatch = Annotated[str | None, Header()]
ID_KEYS = ("monitor-ids", "monitor_ids")


@router.get("/maintenance")
async def list_windows(caller: Caller, conn: Connection, limit: Limit = 100,
                       cursor: Cursor = None) -> dict[str, Any]:
    w = t.maintenance_windows.c
    rows = (await conn.execute(
        select(t.maintenance_windows)
        .where(w.org_id == caller.org_id, w.id > (paging.decode(cursor) or 0))
        .order_by(w.id).limit(limit + 1))).all()
    ids = await _ids_by_name(conn, caller.org_id, {n for r in rows for n in r.monitor_names})
    return paging.page(rows, limit, lambda row: _view(row, ids))


@router.post("/maintenance", status_code=201)
async def create_window(body: Window, caller: Caller, conn: Connection, request: Request,
                        response: Response) -> dict[str, Any]:
    caller.require("member", write=True)
    spec = await _spec(conn, caller.org_id, body)
    await _name_free(conn, caller.org_id, spec.name, None)
    window_id = await store.create_maintenance(conn, spec, caller.org_id)
    await _audit(conn, request, caller, "maintenance_created", spec.name)
    response.headers["Location"] = f"/api/v1/maintenance/{window_id}"
    return await _respond(conn, caller, window_id, response)


@router.get("/maintenance/{window_id}")
async def get_window(window_id: Id, caller: Caller, conn: Connection,
                     response: Response) -> dict[str, Any]:
    return await _respond(conn, caller, window_id, response)


@router.put("/maintenance/{window_id}")
async def replace_window(window_id: Id, body: Window, caller: Caller, conn: Connection,
                         request: Request, response: Response,
                         if_match: IfMatch = None) -> dict[str, Any]:
    """Replace a window with this body (send every field you want to keep)."""
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, window_id)
    check_version("maintenance window", row.revision, if_match)
    return await _change(conn, caller, request, row, body, response)


@router.patch("/maintenance/{window_id}")
async def patch_window(window_id: Id, body: Window, caller: Caller, conn: Connection,
                       request: Request, response: Response,
                       if_match: IfMatch = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``null`` removes a field). Giving
    ``monitors`` or ``monitor-ids`` replaces the monitors the window names."""
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, window_id)
    check_version("maintenance window", row.revision, if_match)
    stored = maintenance_to_mapping(maintenance_from_row(row))
    if any(key in body for key in (*ID_KEYS, "monitors")):
        stored.pop("monitors", None)
    merged = {k: v for k, v in (stored | body).items() if v is not None}
    return await _change(conn, caller, request, row, merged, response)


@router.delete("/maintenance/{window_id}", status_code=204)
async def delete_window(window_id: Id, caller: Caller, conn: Connection, request: Request,
                        if_match: IfMatch = None) -> None:
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, window_id)
    if if_match is not None:
        check_version("maintenance window", row.revision, if_match)
    await store.delete_maintenance(conn, window_id)
    await _audit(conn, request, caller, "maintenance_deleted", row.name)


async def _change(conn: AsyncConnection, caller: Principal, request: Request, row: Any,
                  body: dict[str, Any], response: Response) -> dict[str, Any]:
    spec = await _spec(conn, caller.org_id, body)
    await _name_free(conn, caller.org_id, spec.name, row.id)
    await store.update_maintenance(conn, row.id, spec, managed_by=row.managed_by)
    await _audit(conn, request, caller, "maintenance_changed", spec.name)
    return await _respond(conn, caller, row.id, response)


async def _spec(conn: AsyncConnection, org_id: int, body: dict[str, Any]) -> MaintenanceSpec:
    """Validate a body as a YAML window is validated, then check the monitors it names
    are the organisation's own."""
    body = dict(body)
    given_ids = [body.pop(key) for key in ID_KEYS if key in body]
    if given_ids:
        names = await _names_of_ids(conn, org_id, given_ids[0])
        if isinstance(body.get("monitors", []), list):
            body["monitors"] = sorted({*body.get("monitors", []), *names})
    try:
        spec = parse_maintenance(body)
    except SpecError as error:
        raise invalid([(".".join(map(str, p.path)), p.message)
                       for p in error.problems]) from None
    known = await _ids_by_name(conn, org_id, set(spec.monitors))
    missing = [(f"monitors.{i}", f"no monitor named {name!r}")
               for i, name in enumerate(spec.monitors) if name not in known]
    if missing:
        raise invalid(missing)
    return spec


async def _names_of_ids(conn: AsyncConnection, org_id: int, ids: object) -> list[str]:
    if not isinstance(ids, list) or not all(type(i) is int and 1 <= i <= MAX_ID for i in ids):
        raise invalid([("monitor-ids", "must be a list of monitor ids")])
    m = t.monitors.c
    found: dict[int, str] = {row.id: row.name for row in await conn.execute(
        select(m.id, m.name).where(m.org_id == org_id, m.id.in_(ids)))}
    missing = [(f"monitor-ids.{i}", f"no monitor {monitor_id}")
               for i, monitor_id in enumerate(ids) if monitor_id not in found]
    if missing:  # another organisation's monitor is as absent as a missing one
        raise invalid(missing)
    return [found[i] for i in ids]


async def _ids_by_name(conn: AsyncConnection, org_id: int, names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    m = t.monitors.c
    rows = await conn.execute(select(m.name, m.id).where(m.org_id == org_id,
                                                         m.name.in_(sorted(names))))
    return {row.name: row.id for row in rows}


async def _name_free(conn: AsyncConnection, org_id: int, name: str,
                     window_id: int | None) -> None:
    w = t.maintenance_windows.c
    other = await conn.scalar(select(w.id).where(w.org_id == org_id, w.name == name))
    if other is not None and other != window_id:
        raise Problem(409, f"name: a maintenance window named {name!r} exists",
                      errors=[{"field": "name", "message": "already used"}])


async def _row(conn: AsyncConnection, org_id: int, window_id: int) -> Any:
    row = await store.get_maintenance(conn, org_id, window_id)
    if row is None:  # another organisation's window is as absent as a deleted one
        raise Problem(404, f"no maintenance window {window_id}")
    return row


async def _respond(conn: AsyncConnection, caller: Principal, window_id: int,
                   response: Response) -> dict[str, Any]:
    row = await _row(conn, caller.org_id, window_id)
    response.headers["ETag"] = etag(row.revision)
    return _view(row, await _ids_by_name(conn, caller.org_id, set(row.monitor_names)))


def _view(row: Any, ids: dict[str, int]) -> dict[str, Any]:
    return {"id": row.id, **maintenance_to_mapping(maintenance_from_row(row)),
            "monitor-ids": sorted(ids[name] for name in row.monitor_names if name in ids),
            "version": row.revision, "managed_by": row.managed_by,
            "open_now": store.window_from_row(row).is_open(datetime.now(UTC))}


async def _audit(conn: AsyncConnection, request: Request, caller: Principal, action: str,
                 name: str) -> None:
    await audit.record(conn, action, org_id=caller.org_id, user_id=caller.user_id,
                       target=f"maintenance window {name}", ip=client_ip(request))
