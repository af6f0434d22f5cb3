"""Your account: who you are here (name, email and whether it is confirmed, role,
organisation, two-factor log-in), changing your password, and your API tokens (created
and shown once, revoked). Everything personal, so a sub-account has it too, as the API's
``/account`` and ``/tokens`` are within a sub-account's reach; a viewer may make read
tokens and change their own password, as the API allows.

A new token is the one answer that is not a redirect: it is shown once, in the page that
answers the form (never stored, never put in a URL), with ``Cache-Control: no-store``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from dozor.api import account_retention, passwords
from dozor.api import accounts as api_accounts
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.store import accounts
from dozor.store.db import write_transaction
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.render import render
from dozor.web.session import read_form

# A refusal (a Problem) answers as a page that says why, as on the foundation's pages.
router = APIRouter(include_in_schema=False, route_class=PageRoute)


async def show(request: Request, errors: dict[str, str], status: int = 200,
               form: dict[str, str] | None = None, **once: Any) -> Response:
    """The account page; ``once`` holds what is shown only in this answer (a new token,
    recovery codes)."""
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    async with access.database(request).connect() as conn:
        about = await api_accounts.account(who, conn)
        tokens = await api_accounts.list_tokens(who, conn)
        me = await accounts.user(conn, who.user_id)
        # What is kept until when: owners' and admins' (as the API's and the export).
        kept = await account_retention.account_retention(
            who, conn, request.app.state.settings) if who.can("admin") else None
    return render(request, "account.html", {
        "who": who, "user": user, "me": me, "about": about, "retention": kept,
        "tokens": [t for t in tokens["items"] if t["revoked_at"] is None],
        "errors": errors, "form": form or {}} | once, status=status)


@router.get("/account")
async def account(request: Request) -> Response:
    return await show(request, {})


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    try:
        body = passwords.PasswordChange(current_password=form.get("current_password", ""),
                                        new_password=form.get("new_password", ""))
        async with write_transaction(access.database(request)) as conn:
            await passwords.change_password(body, request, who, conn)
    except ValidationError as error:
        return await show(request, access.model_errors(error), 422)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    return access.see_other("/account#password")


@router.post("/account/tokens")
async def create_token(request: Request) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    days = form.get("expires_in_days", "").strip()
    try:
        body = api_accounts.NewToken(name=form.get("name", "").strip(),
                                     scope=form.get("scope", "read"),
                                     expires_in_days=days or None)
        async with write_transaction(access.database(request)) as conn:
            created = await api_accounts.create_token(body, request, who, conn)
    except ValidationError as error:
        return await show(request, access.model_errors(error), 422, form=form)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status, form=form)
    return await show(request, {}, 201, new_token=created)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: Id) -> Response:
    await read_form(request)
    who = await access.poster(request)
    try:
        async with write_transaction(access.database(request)) as conn:
            await api_accounts.revoke_token(token_id, request, who, conn)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    return access.see_other("/account#tokens")
