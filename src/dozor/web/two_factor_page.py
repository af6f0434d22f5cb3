"""Two-factor log-in from the account page: start (a new secret, shown on the account
page until confirmed, since it is the person's own and they need it to set up their
app), confirm with a code (the answer shows the recovery codes, this once), and turn off
with a code or a recovery code. The steps are ``api.two_factor``'s, with their checks,
rate limit and audit."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from dozor.api import two_factor
from dozor.api.problems import Problem
from dozor.store.db import write_transaction
from dozor.web import access
from dozor.web.account_page import show
from dozor.web.errors import PageRoute
from dozor.web.session import read_form

# A refusal (a Problem) answers as a page that says why, as on the foundation's pages.
router = APIRouter(include_in_schema=False, route_class=PageRoute)
HERE = "/account#two-factor"


@router.post("/account/two-factor")
async def start(request: Request) -> Response:
    await read_form(request)
    who = await access.poster(request)
    try:
        async with write_transaction(access.database(request)) as conn:
            await two_factor.start_two_factor(who, conn)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    return access.see_other(HERE)


@router.post("/account/two-factor/confirm")
async def confirm(request: Request) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    try:
        body = two_factor.Code(code=form.get("code", "").strip())
        async with write_transaction(access.database(request)) as conn:
            answer = await two_factor.confirm_two_factor(body, request, who, conn)
    except ValidationError as error:
        return await show(request, access.model_errors(error), 422)
    except Problem as problem:
        return await show(request, access.field_errors(problem), problem.status)
    return await show(request, {}, recovery_codes=answer["recovery_codes"])


@router.post("/account/two-factor/off")
async def turn_off(request: Request) -> Response:
    form = await read_form(request)
    who = await access.poster(request)
    code = form.get("code", "").strip()
    try:
        # One field takes either: a recovery code is longer than any app code.
        body = two_factor.SecondFactor(code=code) if len(code) <= 10 \
            else two_factor.SecondFactor(recovery_code=code)
        async with write_transaction(access.database(request)) as conn:
            await two_factor.stop_two_factor(body, request, who, conn)
    except ValidationError as error:
        return await show(request, access.model_errors(error), 422)
    except Problem as problem:
        errors = access.field_errors(problem)
        if "recovery_code" in errors:
            errors["code"] = errors.pop("recovery_code")
        return await show(request, errors, problem.status)
    return access.see_other(HERE)
