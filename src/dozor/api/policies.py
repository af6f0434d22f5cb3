"""Alert policies: which contacts hear about which monitors (by name, tag, or all).

While an organisation has no policy, every contact hears about every monitor; with one, a
monitor's alerts go only to the contacts of the policies covering it (``notify.router``).
Every policy carries a ``version``; a change needs ``If-Match``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging
from dozor.api.deps import Caller, Connection, Id
from dozor.api.problems import invalid
from dozor.api.recipients import conflict, merged, moment, owned, record, tagged
from dozor.api.versions import check_version
from dozor.notify import policies
from dozor.notify.policies import PolicySpec
from dozor.store import notify_tables as n

router = APIRouter(tags=["alert policies"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/policies")
async def list_policies(caller: Caller, conn: Connection, limit: Limit = 100,
                        cursor: str | None = None) -> dict[str, Any]:
    a = n.alert_policies.c
    rows = (await conn.execute(
        select(n.alert_policies)
        .where(a.org_id == caller.org_id, a.id > (paging.decode(cursor) or 0))
        .order_by(a.id).limit(limit + 1))).all()
    return paging.page(rows, limit, _view)


@router.post("/policies", status_code=201)
async def create_policy(body: PolicySpec, caller: Caller, conn: Connection, request: Request,
                        response: Response) -> dict[str, Any]:
    """A policy. The organisation's first one ends "every contact hears everything"."""
    caller.require("member", write=True)
    await _check(conn, caller.org_id, body, None)
    policy_id = await policies.add_policy(conn, caller.org_id, body, datetime.now(UTC))
    await record(conn, request, caller, "policy_created", f"policy {policy_id}")
    response.headers["Location"] = f"/api/v1/policies/{policy_id}"
    return await _respond(conn, caller.org_id, policy_id, response)


@router.get("/policies/{policy_id}")
async def get_policy(policy_id: Id, caller: Caller, conn: Connection,
                     response: Response) -> dict[str, Any]:
    return await _respond(conn, caller.org_id, policy_id, response)


@router.patch("/policies/{policy_id}")
async def patch_policy(policy_id: Id, caller: Caller, conn: Connection, request: Request,
                       response: Response, body: Annotated[dict[str, Any], Body()],
                       if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``null`` resets a field to its default)."""
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, policy_id)
    check_version("policy", row.version, if_match)
    spec = merged(PolicySpec, policies.policy_fields(row), body)
    await _check(conn, caller.org_id, spec, policy_id)
    await policies.update_policy(conn, policy_id, spec)
    await record(conn, request, caller, "policy_changed", f"policy {policy_id}")
    return await _respond(conn, caller.org_id, policy_id, response)


@router.delete("/policies/{policy_id}", status_code=204)
async def delete_policy(policy_id: Id, caller: Caller, conn: Connection, request: Request,
                        if_match: Annotated[str | None, Header()] = None) -> None:
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, policy_id)
    if if_match is not None:
        check_version("policy", row.version, if_match)
    await policies.remove_policy(conn, policy_id)
    await record(conn, request, caller, "policy_deleted", f"policy {policy_id}")


async def _check(conn: AsyncConnection, org_id: int, spec: PolicySpec,
                 policy_id: int | None) -> None:
    """Every contact is the organisation's; the name is the policy's own."""
    unknown = await policies.unknown_contacts(conn, org_id, spec.contact_ids)
    if unknown:
        raise invalid([(f"contact_ids.{spec.contact_ids.index(i)}", f"no contact {i}")
                       for i in unknown])
    other = await policies.find_policy(conn, org_id, spec.name)
    if other is not None and other != policy_id:
        raise conflict("name", f"a policy named {spec.name!r} exists")


async def _row(conn: AsyncConnection, org_id: int, policy_id: int) -> Any:
    return await owned(conn, n.alert_policies, org_id, policy_id, "alert policy")


async def _respond(conn: AsyncConnection, org_id: int, policy_id: int,
                   response: Response) -> dict[str, Any]:
    return tagged(response, _view(await _row(conn, org_id, policy_id)))


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, **policies.policy_fields(row), "version": row.version,
            "created_at": moment(row.created_at)}
