"""Maintenance windows: the list, adding one (one-off start and end, or cron, duration and
time zone; monitors by name, tag, or all), and deleting one. Windows are validated and
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
        errors = access.field_errors(problem)
        if "all-monitors" in errors:
            errors["all_monitors"] = errors.pop("all-monitors")
        return await _page(request, form, errors, status=problem.status)
    return access.see_other("/maintenance")


@router.post("/maintenance/{window_id}/delete")
async def delete_window(request: Request, window_id: Id) -> Response:
    _, who = await _writer(request)
    async with write_transaction(access.database(request)) as conn:
        await api_maintenance.delete_window(window_id, who, conn, request, if_match=None)
    return access.see_other("/maintenance")
