"""Status pages: list, create, read, replace, change, delete (their notes are in
``status_notes``, what visitors read in ``status_public``).

A page's body names its groups and the organisation's monitors in them::

    {"slug": "acme", "title": "Acme", "published": true,
     "groups": [{"name": "Web", "monitors": [{"monitor_id": 7, "display_name": "Shop"}]}]}

A monitor that is missing or another organisation's is a 422 naming its field
(``groups.0.monitors.0.monitor_id``), worded alike for both. Every page carries a
``version``; a change needs ``If-Match`` with it (412 when it moved on, 428 without).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging
from dozor.api.deps import Caller, Connection, Id
from dozor.api.problems import Problem, invalid
from dozor.api.security import Principal, client_ip
from dozor.api.versions import check_version, etag
from dozor.config.status_pages import PageSpec, placement_problems
from dozor.privacy import audit
from dozor.store import status_pages as store

router = APIRouter(tags=["status pages"])
Limit = Annotated[int, Query(ge=1, le=500)]
PUBLIC_PATH = "/api/v1/public/status-pages/"
Spec = TypeVar("Spec", bound=BaseModel)


@router.get("/status-pages")
async def list_pages(caller: Caller, conn: Connection, limit: Limit = 100,
                     cursor: str | None = None) -> dict[str, Any]:
    rows = await store.page_rows(conn, caller.org_id, after=paging.decode(cursor) or 0,
                                 limit=limit + 1)
    groups = await store.groups_of(conn, [row.id for row in rows[:limit]])
    return paging.page(rows, limit, lambda row: _view(row, groups.get(row.id, [])))


@router.post("/status-pages", status_code=201)
async def create_page(body: PageSpec, request: Request, caller: Caller, conn: Connection,
                      response: Response) -> dict[str, Any]:
    caller.require("member", write=True)
    await _check(conn, caller.org_id, body)
    async with _addresses_unique():
        page_id = await store.create_page(conn, caller.org_id, body, datetime.now(UTC))
    await _audit(conn, caller, request, "status_page_created", page_id)
    if body.published:
        await _audit(conn, caller, request, "status_page_published", page_id)
    response.headers["Location"] = f"/api/v1/status-pages/{page_id}"
    return await _answer(conn, caller.org_id, page_id, response)


@router.get("/status-pages/{page_id}")
async def get_page(page_id: Id, caller: Caller, conn: Connection,
                   response: Response) -> dict[str, Any]:
    return await _answer(conn, caller.org_id, page_id, response)


@router.put("/status-pages/{page_id}")
async def replace_page(page_id: Id, body: PageSpec, request: Request, caller: Caller,
                       conn: Connection, response: Response,
                       if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Replace a page, its groups and their monitors with this body."""
    return await _change(conn, caller, request, page_id, body, if_match, response)


@router.patch("/status-pages/{page_id}")
async def patch_page(page_id: Id, request: Request, caller: Caller, conn: Connection,
                     response: Response, body: Annotated[dict[str, Any], Body()],
                     if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``null`` sets a field back to its default;
    ``groups``, when given, replaces all of them)."""
    caller.require("member", write=True)
    current = await page(conn, caller.org_id, page_id)
    groups = (await store.groups_of(conn, [page_id])).get(page_id, [])
    merged = {k: v for k, v in (_spec_fields(current) | {"groups": groups} | body).items()
              if v is not None}
    spec = validated(PageSpec, merged)
    return await _change(conn, caller, request, page_id, spec, if_match, response)


@router.delete("/status-pages/{page_id}", status_code=204)
async def delete_page(page_id: Id, request: Request, caller: Caller, conn: Connection,
                      if_match: Annotated[str | None, Header()] = None) -> None:
    """Delete a page and its notes (``If-Match``, when sent, must name its version)."""
    caller.require("member", write=True)
    row = await page(conn, caller.org_id, page_id)
    if if_match is not None:
        check_version("status page", row.version, if_match)
    await store.delete_page(conn, page_id)
    await _audit(conn, caller, request, "status_page_deleted", page_id)


def validated(model: type[Spec], data: dict[str, Any]) -> Spec:
    """``data`` as ``model``, or a 422 naming each field at fault (for merged patches)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid([(".".join(map(str, e["loc"])), e["msg"])
                       for e in error.errors()]) from None


async def page(conn: AsyncConnection, org_id: int, page_id: int) -> Any:
    """The organisation's page; another organisation's is as absent as a missing one."""
    rows = await store.page_rows(conn, org_id, page_id=page_id)
    if not rows:
        raise Problem(404, f"no status page {page_id}")
    return rows[0]


async def _change(conn: AsyncConnection, caller: Principal, request: Request, page_id: int,
                  spec: PageSpec, if_match: str | None, response: Response) -> dict[str, Any]:
    caller.require("member", write=True)
    row = await page(conn, caller.org_id, page_id)
    check_version("status page", row.version, if_match)
    await _check(conn, caller.org_id, spec, page_id)
    async with _addresses_unique():
        await store.update_page(conn, page_id, spec, datetime.now(UTC))
    if spec.published != row.published:
        action = "status_page_published" if spec.published else "status_page_unpublished"
        await _audit(conn, caller, request, action, page_id)
    return await _answer(conn, caller.org_id, page_id, response)


async def _check(conn: AsyncConnection, org_id: int, spec: PageSpec,
                 page_id: int | None = None) -> None:
    """422 for monitors that cannot be shown, 409 for a slug or domain in use."""
    problems = placement_problems(spec)
    own = await store.own_monitors(conn, org_id, [m for _, m in spec.monitor_paths()])
    problems += [(path, f"no monitor {monitor_id} in this organisation")
                 for path, monitor_id in spec.monitor_paths() if monitor_id not in own]
    if problems:
        raise invalid(problems)
    taken = await store.addresses_taken(conn, spec, page_id)
    if taken:
        raise Problem(409, "; ".join(f"{field}: another status page has it" for field in taken),
                      errors=[{"field": field, "message": "already used"} for field in taken])


@contextlib.asynccontextmanager
async def _addresses_unique() -> AsyncIterator[None]:
    # Checked before writing; this is for another change in between (two editors
    # taking one slug at once, a monitor deleted meanwhile).
    try:
        yield
    except IntegrityError:
        raise Problem(409, "another change came in between (a slug or domain taken, a "
                      "monitor deleted); read again and retry") from None


async def _answer(conn: AsyncConnection, org_id: int, page_id: int,
                  response: Response) -> dict[str, Any]:
    row = await page(conn, org_id, page_id)
    groups = (await store.groups_of(conn, [page_id])).get(page_id, [])
    response.headers["ETag"] = etag(row.version)
    return _view(row, groups)


def _spec_fields(row: Any) -> dict[str, Any]:
    return {"slug": row.slug, "title": row.title, "description": row.description,
            "custom_domain": row.custom_domain, "published": row.published}


def _view(row: Any, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row.id, **_spec_fields(row), "groups": groups, "version": row.version,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "public_path": PUBLIC_PATH + row.slug}


async def _audit(conn: AsyncConnection, caller: Principal, request: Request, action: str,
                 page_id: int) -> None:
    await audit.record(conn, action, org_id=caller.org_id, user_id=caller.user_id,
                       target=f"status page {page_id}", ip=client_ip(request))
