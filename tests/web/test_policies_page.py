"""The alert policies page: adding one (contacts by checkbox; monitors by name, tag, or
all), a bad one named beside its field, deleting one, and a contact who is a policy's only
recipient kept."""

from __future__ import annotations

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
