"""The alert policies page: adding one (contacts by checkbox; monitors by name, tag, or
all), a bad one named beside its field, editing one with its version, deleting one, and a
contact who is a policy's only recipient kept."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.conftest import Person, audit_actions
from tests.web.conftest import Browser
from tests.web.test_contacts_page import add_ada, created_id


async def test_a_policy_is_added_listed_and_deleted(owner_browser: Browser) -> None:
    ada, _ = await add_ada(owner_browser)
    bob = created_id(await owner_browser.post("/contacts", {"name": "Bob"}), "contacts")
    added = await owner_browser.post("/policies", {
        "name": "web on call", "contact_ids": [str(ada), str(bob)],
        "monitor_names": "shop, api", "tags": "web"})
    assert added.status_code == 303 and added.headers["location"] == "/policies"
    page = await owner_browser.get("/policies")
    assert "web on call" in page.text and "shop, api" in page.text
    assert "Ada" in page.text and "Bob" in page.text
    delete = [a for a in owner_browser.forms(page) if a.endswith("/delete")]
    assert len(delete) == 1
    assert (await owner_browser.post(delete[0])).status_code == 303
    assert "web on call" not in (await owner_browser.get("/policies")).text


async def test_a_policy_covering_nothing_or_no_one_is_refused_naming_the_field(
        owner_browser: Browser) -> None:
    ada, _ = await add_ada(owner_browser)
    nothing = await owner_browser.post("/policies", {"name": "idle",
                                                     "contact_ids": str(ada)})
    assert nothing.status_code == 422
    assert "all_monitors: choose all_monitors, monitor_names or tags" in nothing.text
    no_one = await owner_browser.post("/policies", {"name": "idle", "all_monitors": "1"})
    assert no_one.status_code == 422 and "contact_ids: " in no_one.text
    unknown = await owner_browser.post("/policies", {
        "name": "idle", "all_monitors": "1", "contact_ids": "999"})
    assert unknown.status_code == 422 and "contact_ids: no contact 999" in unknown.text
    assert "No alert policies" in (await owner_browser.get("/policies")).text


async def test_a_policys_only_recipient_cannot_be_deleted(owner_browser: Browser) -> None:
    ada, _ = await add_ada(owner_browser)
    await owner_browser.post("/policies", {"name": "all", "contact_ids": str(ada),
                                           "all_monitors": "1"})
    refused = await owner_browser.post(f"/contacts/{ada}/delete")
    assert refused.status_code == 409
    assert "only recipient of the alert policies all" in refused.text
    assert (await owner_browser.get(f"/contacts/{ada}")).status_code == 200


async def ada_on_call(owner_browser: Browser, client: httpx.AsyncClient,
                      owner: Person) -> tuple[int, dict[str, Any]]:
    """Ada's contact id and a policy sending her the web monitors' alerts, as the API
    reads it."""
    ada, _ = await add_ada(owner_browser)
    await owner_browser.post("/policies", {"name": "web on call", "contact_ids": str(ada),
                                           "tags": "web"})
    [policy] = (await client.get("/api/v1/policies", headers=owner.headers)).json()["items"]
    return ada, policy


async def stored(client: httpx.AsyncClient, owner: Person, policy_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/policies/{policy_id}", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    policy: dict[str, Any] = answer.json()
    return policy


def version_in(page: httpx.Response) -> str:
    found = re.search(r'name="version" value="(\d+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def test_a_policy_is_edited_on_its_page_and_the_change_is_audited(
        owner_browser: Browser, client: httpx.AsyncClient, owner: Person,
        database_url: str) -> None:
    ada, policy = await ada_on_call(owner_browser, client, owner)
    policy_id = policy["id"]
    bob = created_id(await owner_browser.post("/contacts", {"name": "Bob"}), "contacts")
    listed = await owner_browser.get("/policies")
    assert f'href="/policies/{policy_id}"' in listed.text
    page = await owner_browser.get(f"/policies/{policy_id}")
    assert page.status_code == 200
    assert 'value="web on call"' in page.text and 'name="tags" value="web"' in page.text
    assert f'value="{ada}" checked' in page.text and f'value="{bob}">' in page.text
    saved = await owner_browser.post(f"/policies/{policy_id}", {
        "name": "everyone", "contact_ids": [str(ada), str(bob)], "monitor_names": "shop",
        "tags": "", "all_monitors": "1", "version": version_in(page)})
    assert saved.status_code == 303 and saved.headers["location"] == "/policies"
    now = await stored(client, owner, policy["id"])
    assert (now["name"], now["contact_ids"], now["monitor_names"], now["tags"],
            now["all_monitors"]) == ("everyone", [ada, bob], ["shop"], [], True)
    assert now["version"] == policy["version"] + 1
    changes = [row for row in await audit_actions(database_url, owner.org_id)
               if row[0] == "policy_changed"]
    assert [row[2] for row in changes] == [f"policy {policy_id}"]


async def test_a_bad_edit_is_named_on_its_field_keeps_what_was_typed_and_changes_nothing(
        owner_browser: Browser, client: httpx.AsyncClient, owner: Person) -> None:
    ada, policy = await ada_on_call(owner_browser, client, owner)
    policy_id = policy["id"]
    page = await owner_browser.get(f"/policies/{policy_id}")
    nothing = await owner_browser.post(f"/policies/{policy_id}", {
        "name": "idle renamed", "contact_ids": str(ada), "tags": "",
        "version": version_in(page)})
    assert nothing.status_code == 422
    assert "all_monitors: choose all_monitors, monitor_names or tags" in nothing.text
    assert 'value="idle renamed"' in nothing.text
    no_one = await owner_browser.post(f"/policies/{policy_id}", {
        "name": "idle renamed", "tags": "web", "version": version_in(page)})
    assert no_one.status_code == 422 and "contact_ids: " in no_one.text
    assert await stored(client, owner, policy["id"]) == policy


async def test_an_edit_of_a_policy_changed_meanwhile_is_refused_keeping_what_was_typed(
        owner_browser: Browser, client: httpx.AsyncClient, owner: Person) -> None:
    ada, policy = await ada_on_call(owner_browser, client, owner)
    policy_id = policy["id"]
    page = await owner_browser.get(f"/policies/{policy_id}")
    theirs = await client.patch(f"/api/v1/policies/{policy_id}", headers={
        **owner.headers, "If-Match": str(policy["version"]).join('""')}, json={"name": "theirs"})
    assert theirs.status_code == 200, theirs.text
    mine = await owner_browser.post(f"/policies/{policy_id}", {
        "name": "mine", "contact_ids": str(ada), "tags": "web, eu",
        "version": version_in(page)})
    assert mine.status_code == 412
    assert "Someone changed this alert policy since you opened it" in mine.text
    assert 'value="mine"' in mine.text and 'value="web, eu"' in mine.text
    assert await stored(client, owner, policy["id"]) == theirs.json()


async def test_a_viewer_has_no_edit_link_and_cannot_edit(
        owner_browser: Browser, viewer_browser: Browser, client: httpx.AsyncClient,
        owner: Person) -> None:
    ada, policy = await ada_on_call(owner_browser, client, owner)
    policy_id = policy["id"]
    listed = await viewer_browser.get("/policies")
    assert "web on call" in listed.text and f'href="/policies/{policy_id}"' not in listed.text
    assert (await viewer_browser.get(f"/policies/{policy_id}")).status_code == 403
    refused = await viewer_browser.post(f"/policies/{policy_id}", {
        "name": "viewer's", "contact_ids": str(ada), "all_monitors": "1",
        "version": str(policy["version"])})
    assert refused.status_code == 403 and "this needs the member role" in refused.text
    assert await stored(client, owner, policy["id"]) == policy
