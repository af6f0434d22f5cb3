"""Maintenance windows: the list, adding one (one-off start and end, or cron, duration and
time zone; monitors by name, tag, or all), editing one (with the version it was read at,
so a change made meanwhile is refused) and deleting one. Windows are validated and
stored by ``api.maintenance`` (the YAML spec, the audit, the configuration revision), so
the dashboard, the API and ``dozor apply`` accept the same windows.

Windows are organisation-wide: sub-accounts are refused, as the API refuses them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from dozor.api import maintenance as api_maintenance
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
SHOWN = 500  # windows on the page; an organisation rarely has more than a few dozen


def window_body(form: dict[str, str]) -> dict[str, Any]:
    """The API's body for a window from the form's fields; the fields of the schedule not
    chosen are left out, so the spec judges only what the person meant.

    >>> window_body({"name": "deploy", "schedule": "cron", "cron": "0 3 * * *",
    ...              "duration": "30m", "start": "x", "monitors": "shop, api"})
    {'name': 'deploy', 'timezone': 'UTC', 'cron': '0 3 * * *', 'duration': '30m', \
'monitors': ['shop', 'api']}
    """
    body: dict[str, Any] = {"name": form.get("name", "").strip(),
                            "timezone": form.get("timezone", "").strip() or "UTC"}
    keys = ("cron", "duration") if form.get("schedule") == "cron" else ("start", "end")
    body |= {key: form.get(key, "").strip() or None for key in keys}
    for key in ("monitors", "tags"):
        names = [part.strip() for part in form.get(key, "").split(",") if part.strip()]
        if names:
            body[key] = names
    if form.get("all_monitors"):
        body["all-monitors"] = True
    return body


def window_form(window: dict[str, Any]) -> dict[str, str]:
    """A stored window (the API's view) as the form shows it. A one-off window's times are
    wall times in its own time zone (the view's offset, if any, is that zone's).

    >>> window_form({"name": "move", "start": "2030-01-05T22:00:00+01:00",
    ...              "end": "2030-01-06T02:00:00", "timezone": "Europe/Warsaw",
    ...              "monitors": ["shop", "api"], "version": 2})["start"]
    '2030-01-05T22:00:00'
    """
    form = {"name": window["name"], "schedule": "cron" if window.get("cron") else "once",
            "timezone": window.get("timezone") or "UTC", "version": str(window["version"]),
            "all_monitors": "1" if window.get("all-monitors") else ""}
    form |= {key: str(window.get(key) or "") for key in ("cron", "duration")}
    form |= {key: str(window.get(key) or "")[:19] for key in ("start", "end")}
    form |= {key: ", ".join(window.get(key) or []) for key in ("monitors", "tags")}
    return form


def _errors(problem: Problem) -> dict[str, str]:
    """The problem's errors by the form's field names (the spec's ``all-monitors`` is the
    form's ``all_monitors``)."""
    errors = access.field_errors(problem)
    if "all-monitors" in errors:
        errors["all_monitors"] = errors.pop("all-monitors")
    return errors


async def _page(request: Request, form: dict[str, str], errors: dict[str, str],
                status: int = 200) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    async with access.database(request).connect() as conn:
        listed = await api_maintenance.list_windows(who, conn, limit=SHOWN, cursor=None)
    return render(request, "maintenance.html", {
        "who": who, "user": user, "windows": listed["items"], "form": form,
        "errors": errors}, status=status)


@router.get("/maintenance")
async def maintenance_list(request: Request) -> Response:
    return await _page(request, {"schedule": "once", "timezone": "UTC"}, {})


async def _writer(request: Request) -> tuple[dict[str, str], Principal]:
    form = await read_form(request)
    who = await access.poster(request)
    access.refuse_sub_account(who)
    who.require("member", write=True)
    return form, who


@router.post("/maintenance")
async def add_window(request: Request) -> Response:
    form, who = await _writer(request)
    try:
        async with write_transaction(access.database(request)) as conn:
            await api_maintenance.create_window(window_body(form), who, conn, request,
                                                Response())
    except Problem as problem:
        return await _page(request, form, _errors(problem), status=problem.status)
    return access.see_other("/maintenance")


@router.post("/maintenance/{window_id}/delete")
async def delete_window(request: Request, window_id: Id) -> Response:
    _, who = await _writer(request)
    async with write_transaction(access.database(request)) as conn:
        await api_maintenance.delete_window(window_id, who, conn, request, if_match=None)
    return access.see_other("/maintenance")


@router.get("/maintenance/{window_id}")
async def window_page(request: Request, window_id: Id) -> Response:
    return await _edit_page(request, window_id, None, {})


async def _edit_page(request: Request, window_id: int, form: dict[str, str] | None,
                     errors: dict[str, str], status: int = 200) -> Response:
    """The edit form: ``form`` is what was typed, else (None) the stored window. A viewer
    is refused the page, as the form would be refused them."""
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    access.refuse_sub_account(who)
    who.require("member", write=True)
    async with access.database(request).connect() as conn:
        window = await api_maintenance.get_window(window_id, who, conn, Response())
    return render(request, "edit_window.html", {
        "who": who, "user": user, "window": window,
        "form": window_form(window) if form is None else form, "errors": errors,
        "stale": status == 412}, status=status)


@router.post("/maintenance/{window_id}")
async def save_window(request: Request, window_id: Id) -> Response:
    """The form replaces the window (a field left empty is dropped, as on adding one);
    ``version`` is the If-Match."""
    form, who = await _writer(request)
    try:
        async with write_transaction(access.database(request)) as conn:
            await api_maintenance.replace_window(window_id, window_body(form), who, conn,
                                                 request, Response(),
                                                 f'"{form.get("version", "")}"')
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _edit_page(request, window_id, form, _errors(problem), problem.status)
    return access.see_other("/maintenance")
