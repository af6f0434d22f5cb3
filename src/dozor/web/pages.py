"""The dashboard's pages: log-in, the overview, a monitor, adding one, pausing, the live
stream and the language choice. Pages read on a connection that takes no write lock;
forms post urlencoded bodies checked for their form token, and answer with a redirect
(post/redirect/get), so a reload never sends a form twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import func, select, update

from dozor.api import accounts as account_routes
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.api.security import SESSION_COOKIE, digest
from dozor.store import account_tables as a
from dozor.store.db import write_transaction
from dozor.web import access, monitor_page, overview, status_page
from dozor.web.errors import PageRoute
from dozor.web.i18n import LANGUAGES
from dozor.web.live import LiveStates, event_monitor
from dozor.web.render import render
from dozor.web.session import read_form

router = APIRouter(include_in_schema=False, route_class=PageRoute)
KEEPALIVE = 15.0  # seconds between comments on an idle event stream


def _safe_next(value: str | None) -> str:
    # Only a path of ours: never an absolute URL a link could smuggle in.
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next")),
                                          "error": None,
                                          "signup": await _signup_open(request)})


@router.post("/login")
async def log_in(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    target = _safe_next(form.get("next"))
    redirect = RedirectResponse(target, status_code=303)
    try:
        body = account_routes.LogIn(email=form.get("email", ""),
                                    password=form.get("password", ""),
                                    code=form.get("code") or None)
        async with write_transaction(access.database(request)) as conn:
            try:
                await account_routes.log_in(body, request, redirect, conn)
            except Problem as problem:
                if problem.commit:  # a failed attempt counts towards the lock-out
                    await conn.commit()
                raise
    except Problem as problem:
        return render(request, "login.html", {"next": target, "error": problem.detail,
                                              "email": form.get("email")},
                      status=problem.status)
    except ValidationError:  # an empty or malformed field
        return render(request, "login.html", {"next": target, "email": form.get("email"),
                                              "error": "wrong email, password or code"},
                      status=422)
    return redirect


async def _signup_open(request: Request) -> bool:
    """Sign-up shows when no one has an account yet (the first person owns the
    installation) or when the operator opened it (DOZOR_SIGNUP)."""
    if request.app.state.settings.signup:
        return True
    async with access.database(request).connect() as conn:
        return (await conn.execute(select(func.count()).select_from(a.users))).scalar_one() == 0


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    if not await _signup_open(request):
        return RedirectResponse("/login", status_code=303)
    return render(request, "signup.html", {"form": {}, "error": None})


@router.post("/signup")
async def sign_up(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if not await _signup_open(request):
        return RedirectResponse("/login", status_code=303)
    redirect = RedirectResponse("/", status_code=303)
    try:
        body = account_routes.SignUp(email=form.get("email", ""), name=form.get("name", ""),
                                     password=form.get("password", ""))
        async with write_transaction(access.database(request)) as conn:
            await account_routes.sign_up(body, request, conn, request.app.state.settings)
            await account_routes.log_in(
                account_routes.LogIn(email=body.email, password=body.password),
                request, redirect, conn)
    except Problem as problem:
        return render(request, "signup.html", {"form": form, "error": problem.detail},
                      status=problem.status)
    except ValidationError as error:
        return render(request, "signup.html", {"form": form, "error": "; ".join(
            f"{e['loc'][0]}: {e['msg']}" for e in error.errors())}, status=422)
    return redirect


@router.post("/logout")
async def log_out(request: Request) -> Response:
    await read_form(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    async with write_transaction(access.database(request)) as conn:
        await conn.execute(a.sessions.delete().where(a.sessions.c.token_hash == digest(token)))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE)
    return answer


@router.post("/language")
async def choose_language(request: Request) -> Response:
    form = await read_form(request)
    language = form.get("language", "")
    if language not in LANGUAGES:
        raise Problem(422, "language: en or pl")
    who, _ = await access.signed_in(request)
    if who is not None:
        async with write_transaction(access.database(request)) as conn:
            await conn.execute(update(a.users).where(a.users.c.id == who.user_id)
                               .values(language=language))
    answer = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    answer.set_cookie("dozor_language", language, max_age=365 * 86400, samesite="lax")
    return answer


@router.get("/")
async def overview_page(request: Request) -> Response:
    if (public := await status_page.status_for_host(request)) is not None:  # custom domain
        return public
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    filters = overview.Filters.from_query(dict(request.query_params))
    async with access.database(request).connect() as conn:
        page = await overview.load(conn, who, filters)
    return render(request, "overview.html", {"page": page, "user": user, "who": who})


@router.get("/monitors/{monitor_id}")
async def monitor(request: Request, monitor_id: Id) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    range_key = request.query_params.get("range", "24h")
    range_key = range_key if range_key in monitor_page.RANGES else "24h"
    async with access.database(request).connect() as conn:
        shown = await monitor_page.load(conn, who, monitor_id, range_key,
                                        request.app.state.settings.location)
    if shown is None:
        return render(request, "not_found.html", {"user": user, "who": who}, status=404)
    return render(request, "monitor.html", {"m": shown, "user": user, "who": who,
                                            "range": range_key})


@router.get("/monitors/{monitor_id}/edit")
async def edit_monitor(request: Request, monitor_id: Id) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    async with access.database(request).connect() as conn:
        found = await monitor_page.config_yaml(conn, who, monitor_id)
    if found is None:
        return render(request, "not_found.html", {"user": user, "who": who}, status=404)
    text, version = found
    return render(request, "edit_monitor.html", {"user": user, "who": who, "id": monitor_id,
                                                 "text": text, "version": version,
                                                 "errors": {}})


@router.post("/monitors/{monitor_id}/edit")
async def save_monitor(request: Request, monitor_id: Id) -> Response:
    form = await read_form(request)
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    who.require("member", write=True)
    async with write_transaction(access.database(request)) as conn:
        if await monitor_page.config_yaml(conn, who, monitor_id) is None:
            return render(request, "not_found.html", {"user": user, "who": who}, status=404)
        errors = await monitor_page.replace(conn, who, monitor_id, form.get("config", ""),
                                            form.get("version", ""))
        if errors:
            await conn.rollback()
    if errors:
        return render(request, "edit_monitor.html", {
            "user": user, "who": who, "id": monitor_id, "text": form.get("config", ""),
            "version": form.get("version", ""), "errors": errors}, status=422)
    return RedirectResponse(f"/monitors/{monitor_id}", status_code=303)


@router.post("/monitors/{monitor_id}/{action}")
async def pause_or_resume(request: Request, monitor_id: Id, action: str) -> Response:
    if action not in ("pause", "resume"):
        raise Problem(404, "no such action")
    await read_form(request)
    who, _ = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    who.require("member", write=True)
    async with write_transaction(access.database(request)) as conn:
        await monitor_page.set_paused(conn, who, monitor_id, action == "pause")
    return RedirectResponse(f"/monitors/{monitor_id}", status_code=303)


@router.get("/new")
async def new_monitor(request: Request) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    return render(request, "new_monitor.html", {"user": user, "who": who, "form": {},
                                                "errors": {}})


@router.post("/new")
async def add_monitor(request: Request) -> Response:
    form = await read_form(request)
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    who.require("member", write=True)
    async with write_transaction(access.database(request)) as conn:
        created, errors = await monitor_page.create(conn, who, form)
    if created is None:
        return render(request, "new_monitor.html", {"user": user, "who": who, "form": form,
                                                    "errors": errors}, status=422)
    return RedirectResponse(f"/monitors/{created}", status_code=303)


@router.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events (``web.live``): ``state`` for each committed state change of
    the account, ``regional`` for each committed change of a regional problem."""
    who, _ = await access.signed_in(request)
    if who is None:
        return Response(status_code=401)
    live: LiveStates = request.app.state.live
    subscriber = live.subscribe(who.org_id)  # before reading: no change falls in between
    shown = [int(i) for i in request.query_params.get("ids", "").split(",")[:200]
             if i.isdigit()]
    # A sub-account is told only of the monitors it may see.
    visible = None
    async with access.database(request).connect() as conn:
        if who.restricted:
            visible = await monitor_page.visible_ids(conn, who)
        # The page's monitors as they are now: a change made between the page's rendering
        # and this stream's start would otherwise never reach it.
        current = await monitor_page.current_events(conn, who, shown)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            for name, data in current:
                if visible is None or event_monitor((name, data)) in visible:
                    yield f"event: {name}\ndata: {data}\n\n"
            while True:
                if subscriber.behind:
                    yield "event: reload\ndata: {}\n\n"
                    return
                try:
                    event = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield f": {datetime.now(UTC).isoformat()}\n\n"
                    continue
                if visible is not None and event_monitor(event) not in visible:
                    continue
                yield f"event: {event[0]}\ndata: {event[1]}\n\n"
        finally:
            live.unsubscribe(subscriber)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
