"""Your data (owners and admins): downloading everything held, restricting processing,
and erasing the account, with its erasure requests and their deadlines. The forms call
the API's own functions (``api.account_privacy``), so roles and the audit log apply
unchanged; restricting and erasing are the owner's alone, as in the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response

from dozor.api import account_privacy
from dozor.api.problems import Problem
from dozor.store.db import write_transaction
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.render import render
from dozor.web.session import read_form

router = APIRouter(include_in_schema=False, route_class=PageRoute)


async def show(request: Request, errors: dict[str, str], status: int = 200) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    access.refuse_sub_account(who)
    if not who.can("admin"):
        return access.forbidden_page(request, who, user)
    async with access.database(request).connect() as conn:
        state = await account_privacy.privacy_state(who, conn)
        about = await account_privacy.organisation_of(conn, who.org_id)
    return render(request, "privacy.html", {
        "who": who, "user": user, "state": state, "org": about, "errors": errors},
        status=status)


@router.get("/privacy")
async def privacy(request: Request) -> Response:
    return await show(request, {})


@router.post("/privacy/restriction")
async def restriction(request: Request) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    body = account_privacy.Restriction(restricted=form.get("restricted") == "true")
    try:
        async with write_transaction(access.database(request)) as conn:
            await account_privacy.set_restriction(body, who, conn, request)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    return access.see_other("/privacy#restriction")


@router.post("/privacy/erasure")
async def erasure(request: Request, background: BackgroundTasks) -> Response:
    form = await read_form(request)
    who, user = await access.signed_in(request)
    if who is None:
        raise Problem(401, "log in again: the session has ended")
    engine = access.database(request)
    try:
        async with write_transaction(engine) as conn:
            row = await account_privacy.start_account_erasure(
                conn, request, who, form.get("confirm", "").strip())
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    background.add_task(account_privacy.carry_out, engine)
    # The session goes with the account: this answer is the last page it shows.
    context: dict[str, Any] = {"who": None, "user": user, "request_row": row}
    return render(request, "erasure_requested.html", context, status=202)
