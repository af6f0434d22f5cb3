"""The team: the organisation's people and their roles. Owners and admins invite by
email, change roles (and the tags a sub-account is limited to) and remove people;
everyone else reads. Every act goes through
``api.members`` (the organisation's row lock, the last owner's protection, owner-only
changes, invitations by mail, the audit), so the page only turns its answers into
errors beside the forms.

The team is organisation-wide: sub-accounts are refused, as the API refuses them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import members as api_members
from dozor.api import personal_reads
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.store.db import write_transaction
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.render import render
from dozor.web.session import read_form

# A refusal (a Problem) answers as a page that says why, as on the foundation's pages.
router = APIRouter(include_in_schema=False, route_class=PageRoute)
SHOWN = 500
ROLES = ("viewer", "member", "admin", "owner")


async def _page(request: Request, form: dict[str, str], errors: dict[str, str],
                status: int = 200) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    await personal_reads.noted_by_page(request, access.database(request), who, "members")
    async with access.database(request).connect() as conn:
        listed = await api_members.list_members(who, conn, limit=SHOWN, cursor=None)
    return render(request, "team.html", {
        "who": who, "user": user, "members": listed["items"], "roles": ROLES, "form": form,
        "errors": errors}, status=status)


def tags_of(text: str | None) -> list[str] | None:
    """A sub-account's tags from the form (comma separated); none: the whole organisation.

    >>> tags_of(" web, api ,"), tags_of("")
    (['web', 'api'], None)
    """
    tags = [tag.strip() for tag in (text or "").split(",") if tag.strip()]
    return tags or None


@router.get("/team")
async def team(request: Request) -> Response:
    return await _page(request, {"role": "member"}, {})


async def _act(request: Request, form: dict[str, str], act: Any,
               member: int | None = None) -> Response:
    """Run one of the API's acts in a transaction; its problem is shown on the page, with
    the problem's status (403 for a viewer, 404 for someone not in the organisation)."""
    who = await access.poster(request)
    access.refuse_sub_account(who)
    try:
        async with write_transaction(access.database(request)) as conn:
            await act(who, conn)
    except Problem as problem:
        errors = access.field_errors(problem)
        return await _page(request, form, _of_member(errors, member), problem.status)
    return access.see_other("/team")


def _of_member(errors: dict[str, str], member: int | None) -> dict[str, str]:
    """A row's errors go above the table, naming the member: the fields beside which
    they would show belong to the invitation form.

    >>> _of_member({"monitor_tags": "an admin manages the whole organisation"}, 3)
    {'user 3, monitor_tags': 'an admin manages the whole organisation'}
    """
    if member is None:
        return errors
    return {f"user {member}" + (f", {field}" if field else ""): message
            for field, message in errors.items()}


@router.post("/team/members")
async def invite(request: Request) -> Response:
    form = await read_form(request)
    try:
        body = api_members.NewMember(email=form.get("email", "").strip(),
                                     role=form.get("role", "member"),
                                     name=form.get("name", "").strip() or None,
                                     language=form.get("language", "en"),
                                     monitor_tags=tags_of(form.get("monitor_tags")))
    except ValidationError as error:
        return await _refused_or(request, form, access.model_errors(error))

    async def add(who: Principal, conn: AsyncConnection) -> None:
        await api_members.add_member(body, request, Response(), who, conn,
                                     request.app.state.settings)
    return await _act(request, form, add)


@router.post("/team/members/{user_id}/role")
async def change_role(request: Request, user_id: Id) -> Response:
    form = await read_form(request)
    try:
        # Both fields are always sent: an emptied tags field makes a full member.
        body = api_members.MemberChange(role=form.get("role"),
                                        monitor_tags=tags_of(form.get("monitor_tags")))
    except ValidationError as error:
        return await _refused_or(request, {}, _of_member(access.model_errors(error), user_id))

    async def change(who: Principal, conn: AsyncConnection) -> None:
        await api_members.change_role(user_id, body, request, who, conn)
    return await _act(request, {}, change, user_id)


@router.post("/team/members/{user_id}/remove")
async def remove(request: Request, user_id: Id) -> Response:
    await read_form(request)

    async def remove_one(who: Principal, conn: AsyncConnection) -> None:
        await api_members.remove_member(user_id, request, who, conn)
    return await _act(request, {}, remove_one, user_id)


async def _refused_or(request: Request, form: dict[str, str],
                      errors: dict[str, str]) -> Response:
    """A form that does not validate: 403 for someone who may not add or change anyone
    (validation must tell a viewer nothing), else the errors on the page."""
    who = await access.poster(request)
    access.refuse_sub_account(who)
    who.require("admin", write=True)
    return await _page(request, form, errors, status=422)
