"""Alert policies: the list, adding one (its contacts; monitors by name, by tag, or all),
editing one (with the version it was read at, so a change made meanwhile is refused) and
deleting one, through ``api.policies``'s route functions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from dozor.api import contacts as api_contacts
from dozor.api import policies as api_policies
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.notify.policies import PolicySpec
from dozor.store.db import write_transaction
from dozor.web.access import database, field_errors, see_other
from dozor.web.recipients_common import (
    RecipientsRoute,
    form_list,
    names,
    reader,
    spec,
    writer,
)
from dozor.web.render import render

router = APIRouter(include_in_schema=False, route_class=RecipientsRoute)
SHOWN = 500  # policies and contacts on the page; an account has a few of each


def policy_values(form: dict[str, str], contact_ids: list[str]) -> dict[str, Any]:
    """The API's policy fields from the form's (contacts are checkboxes, posted once each).

    >>> policy_values({"name": "web", "tags": "web, eu"}, ["3"])
    {'name': 'web', 'contact_ids': [3], 'all_monitors': False, 'monitor_names': [], \
'tags': ['web', 'eu']}
    """
    return {"name": form.get("name", "").strip(),
            "contact_ids": [int(i) if i.isdigit() else i for i in contact_ids],
            "all_monitors": bool(form.get("all_monitors")),
            "monitor_names": names(form.get("monitor_names", "")),
            "tags": names(form.get("tags", ""))}


def policy_form(policy: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A stored policy (the API's view) as the form shows it, and its contacts ticked.

    >>> policy_form({"name": "web", "contact_ids": [3], "all_monitors": False,
    ...              "monitor_names": ["shop", "api"], "tags": [], "version": 2})
    ({'name': 'web', 'monitor_names': 'shop, api', 'tags': '', 'all_monitors': '', \
'version': '2'}, ['3'])
    """
    return ({"name": policy["name"], "monitor_names": ", ".join(policy["monitor_names"]),
             "tags": ", ".join(policy["tags"]),
             "all_monitors": "1" if policy["all_monitors"] else "",
             "version": str(policy["version"])}, [str(i) for i in policy["contact_ids"]])


@router.get("/policies")
async def policies_list(request: Request) -> Response:
    return await _page(request, {}, [], {})


async def _page(request: Request, form: dict[str, str], chosen: list[str],
                errors: dict[str, str], status: int = 200) -> Response:
    who, user = await reader(request)
    async with database(request).connect() as conn:
        listed = await api_policies.list_policies(who, conn, limit=SHOWN, cursor=None)
        contacts = (await api_contacts.list_contacts(who, conn, limit=SHOWN,
                                                     cursor=None))["items"]
    named = {c["id"]: c["name"] for c in contacts}
    return render(request, "policies.html", {
        "who": who, "user": user, "policies": listed["items"], "contacts": contacts,
        "named": named, "form": form, "chosen": chosen, "errors": errors}, status=status)


@router.post("/policies")
async def add_policy(request: Request) -> Response:
    form, who = await writer(request)
    chosen = await form_list(request, "contact_ids")
    try:
        async with write_transaction(database(request)) as conn:
            await api_policies.create_policy(spec(PolicySpec, policy_values(form, chosen)),
                                             who, conn, request, Response())
    except Problem as problem:
        return await _page(request, form, chosen, field_errors(problem), problem.status)
    return see_other("/policies")


@router.post("/policies/{policy_id}/delete")
async def delete_policy(request: Request, policy_id: Id) -> Response:
    _, who = await writer(request)
    async with write_transaction(database(request)) as conn:
        await api_policies.delete_policy(policy_id, who, conn, request, if_match=None)
    return see_other("/policies")


@router.get("/policies/{policy_id}")
async def policy_page(request: Request, policy_id: Id) -> Response:
    return await _edit_page(request, policy_id, None, [], {})


async def _edit_page(request: Request, policy_id: int, form: dict[str, str] | None,
                     chosen: list[str], errors: dict[str, str],
                     status: int = 200) -> Response:
    """The edit form: ``form`` is what was typed, else (None) the stored policy. A viewer
    is refused the page, as the form would be refused them."""
    who, user = await reader(request)
    who.require("member", write=True)
    async with database(request).connect() as conn:
        policy = await api_policies.get_policy(policy_id, who, conn, Response())
        contacts = (await api_contacts.list_contacts(who, conn, limit=SHOWN,
                                                     cursor=None))["items"]
    if form is None:
        form, chosen = policy_form(policy)
    return render(request, "edit_policy.html", {
        "who": who, "user": user, "policy": policy, "contacts": contacts, "form": form,
        "chosen": chosen, "errors": errors, "stale": status == 412}, status=status)


@router.post("/policies/{policy_id}")
async def save_policy(request: Request, policy_id: Id) -> Response:
    """Every field of the form replaces the stored one; ``version`` is the If-Match."""
    form, who = await writer(request)
    chosen = await form_list(request, "contact_ids")
    try:
        async with write_transaction(database(request)) as conn:
            await api_policies.patch_policy(policy_id, who, conn, request, Response(),
                                            policy_values(form, chosen),
                                            f'"{form.get("version", "")}"')
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _edit_page(request, policy_id, form, chosen, field_errors(problem),
                                problem.status)
    return see_other("/policies")
