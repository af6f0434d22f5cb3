"""Incidents: the list (open ones first, then the recent closed ones), one incident with
its story, acknowledgement and comments, and the forms that acknowledge and comment. The
acts go through ``api.incidents`` so roles, sub-account reach and the audit stay there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import incidents as api_incidents
from dozor.api import subaccounts
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.store import incidents as store
from dozor.store.db import write_transaction
from dozor.store.incidents import IncidentFilter
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.render import render
from dozor.web.session import read_form

# A refusal (a Problem) answers as a page that says why, as on the foundation's pages.
router = APIRouter(include_in_schema=False, route_class=PageRoute)
OPEN_SHOWN, CLOSED_SHOWN = 200, 50  # every open one matters; of the closed, the recent
STATES = ("open", "closed")


@dataclass(frozen=True, slots=True)
class Story:
    incident: Any
    duration: int  # seconds, until now while open
    changes: list[Any]
    comments: list[Any]


def duration_of(incident: Any, now: datetime | None = None) -> int:
    ended = incident.closed_at or now or datetime.now(UTC)
    return max(0, round(float((ended - incident.opened_at).total_seconds())))


async def listed(conn: AsyncConnection, who: Principal, state: str | None,
                 before: int | None = None) -> tuple[list[Any], int | None]:
    """Open incidents first, then closed ones, each newest first; and where the next
    page of closed ones starts (None: no more). A later page has closed ones only."""
    visible = await subaccounts.visible_monitor_ids(conn, who)
    found: list[Any] = []
    if state in (None, "open") and before is None:
        found += await store.find_incidents(
            conn, who.org_id, IncidentFilter(state="open", monitor_ids=visible),
            limit=OPEN_SHOWN)
    older = None
    if state in (None, "closed"):
        closed = await store.find_incidents(
            conn, who.org_id, IncidentFilter(state="closed", monitor_ids=visible),
            before=before, limit=CLOSED_SHOWN + 1)
        found += closed[:CLOSED_SHOWN]
        older = closed[CLOSED_SHOWN - 1].id if len(closed) > CLOSED_SHOWN else None
    return found, older


async def story(conn: AsyncConnection, who: Principal, incident_id: int) -> Story | None:
    incident = await store.get_incident(conn, who.org_id, incident_id)
    if incident is None or not who.sees(incident.monitor_tags):
        return None  # a stranger's, or beyond a sub-account's tags: as absent as missing
    changes = await store.state_changes(conn, incident)
    comments = await store.list_comments(conn, incident_id,
                                         limit=api_incidents.COMMENTS_SHOWN)
    return Story(incident, duration_of(incident), list(changes), list(comments))


@router.get("/incidents")
async def incidents_list(request: Request) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    state = request.query_params.get("state")
    state = state if state in STATES else None
    before = access.id_param(request.query_params.get("before"))
    async with access.database(request).connect() as conn:
        rows, older = await listed(conn, who, state, before)
    return render(request, "incidents.html", {
        "who": who, "user": user, "rows": rows, "state": state, "older": older,
        "durations": {row.id: duration_of(row) for row in rows}})


@router.get("/incidents/{incident_id}")
async def incident_page(request: Request, incident_id: Id) -> Response:
    return await _show(request, incident_id, {}, {})


async def _show(request: Request, incident_id: int, errors: dict[str, str],
                form: dict[str, str], status: int = 200) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    async with access.database(request).connect() as conn:
        shown = await story(conn, who, incident_id)
    if shown is None:
        return access.not_found_page(request, who, user)
    return render(request, "incident.html", {"who": who, "user": user, "s": shown,
                                             "errors": errors, "form": form}, status=status)


@router.post("/incidents/{incident_id}/acknowledge")
async def acknowledge(request: Request, incident_id: Id) -> Response:
    await read_form(request)
    who = await access.poster(request)
    try:
        async with write_transaction(access.database(request)) as conn:
            await api_incidents.acknowledge(incident_id, who, conn, request)
    except Problem as problem:
        if problem.status != 409:  # 403, 404: the answer the API gives
            raise
        return await _show(request, incident_id, access.field_errors(problem), {}, 409)
    return access.see_other(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/comments")
async def comment(request: Request, incident_id: Id) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    try:
        body = api_incidents.NewComment(body=form.get("body", ""))
    except ValidationError as error:
        who.require("member", write=True)  # a viewer learns nothing from validation
        return await _show(request, incident_id, access.model_errors(error), form, 422)
    async with write_transaction(access.database(request)) as conn:
        await api_incidents.add_comment(incident_id, body, who, conn, Response())
    return access.see_other(f"/incidents/{incident_id}#comments")
