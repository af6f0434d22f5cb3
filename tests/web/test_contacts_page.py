"""The contacts pages: adding a contact and an email point, its confirmation with the code
a real SMTP server received (a wrong code shown and counted), what a viewer, a stranger
and a sub-account see and may do, and bad input named beside its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update

from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import Mailbox, Person, body, sub_account
from tests.api.test_isolation import snapshot
from tests.web.conftest import Browse, Browser


def created_id(answer: httpx.Response, kind: str) -> int:
    """The id in a post's redirect to the new object's page."""
    assert answer.status_code == 303, answer.text[:500]
    found = re.fullmatch(rf"/{kind}/(\d+)", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return int(found.group(1))


async def add_ada(browser: Browser) -> tuple[int, int]:
    """A contact, Ada, with an unconfirmed email point; (contact id, point id)."""
    contact_id = created_id(await browser.post("/contacts", {
        "name": "Ada", "timezone": "Europe/Warsaw", "language": "pl"}), "contacts")
    point_id = created_id(await browser.post(f"/contacts/{contact_id}/points", {
        "kind": "email", "address": "ada@example.com", "events": ["down", "up"],
        "escalation_minutes": "5", "priority": "1"}), "points")
    return contact_id, point_id


async def failed_tries(database_url: str, point_id: int) -> int:
    engine = create_engine(database_url)
    v = n.verifications.c
    async with engine.connect() as connection:
        tries = (await connection.execute(select(v.failed_tries).where(
            v.point_id == point_id, v.method == "code"))).scalar_one()
    await engine.dispose()
    return int(tries)


async def test_a_member_confirms_an_email_point_with_the_code_the_mail_brought(
        owner_browser: Browser, mailbox: Mailbox, database_url: str) -> None:
    contact_id, point_id = await add_ada(owner_browser)
    listed = await owner_browser.get("/contacts")
    assert "Ada" in listed.text and "ada@example.com" in listed.text
    assert "unconfirmed" in listed.text

    sent = await owner_browser.post(f"/points/{point_id}/verify")
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/points/{point_id}?sent=1"
    assert "A code is on its way" in (await owner_browser.get(sent.headers["location"])).text
    mail = (await mailbox.wait("ada@example.com", "Kod Dozor"))[0]  # Ada reads Polish
    found = re.search(r"\b\d{6}\b", body(mail))
    assert found is not None, body(mail)
    code = found.group()

    wrong = await owner_browser.post(f"/points/{point_id}/confirm",
                                     {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 422
    assert "code: wrong code" in wrong.text
    assert await failed_tries(database_url, point_id) == 1  # committed: the try counts

    right = await owner_browser.post(f"/points/{point_id}/confirm", {"code": code})
    assert right.status_code == 303 and right.headers["location"] == f"/points/{point_id}"
    page = await owner_browser.get(f"/points/{point_id}")
    assert 'ps-confirmed' in page.text and "granted" in page.text  # the consent ledger
    contact = await owner_browser.get(f"/contacts/{contact_id}")
    assert 'ps-confirmed' in contact.text
    assert f"/points/{point_id}/verify" not in contact.text


async def test_a_telegram_point_shows_its_deep_link_once(owner_browser: Browser) -> None:
    contact_id, _ = await add_ada(owner_browser)
    point_id = created_id(await owner_browser.post(f"/contacts/{contact_id}/points", {
        "kind": "telegram", "address": "", "events": ["down"]}), "points")
    answer = await owner_browser.post(f"/points/{point_id}/verify")
    assert answer.status_code == 200
    link = re.search(r"/start [\w-]+", answer.text)
    assert link is not None, answer.text  # no bot name configured: the command to send
    assert link.group() not in (await owner_browser.get(f"/points/{point_id}")).text


async def test_a_second_code_within_a_minute_is_refused_on_the_page(
        owner_browser: Browser) -> None:
    _, point_id = await add_ada(owner_browser)
    assert (await owner_browser.post(f"/points/{point_id}/verify")).status_code == 303
    again = await owner_browser.post(f"/points/{point_id}/verify")
    assert again.status_code == 429
    assert "wait a minute" in again.text


async def test_a_viewer_sees_points_without_addresses_and_changes_nothing(
        owner_browser: Browser, viewer_browser: Browser, owner: Person,
        database_url: str) -> None:
    contact_id, point_id = await add_ada(owner_browser)
    before = await snapshot(database_url, owner.org_id)
    for path in ("/contacts", f"/contacts/{contact_id}", f"/points/{point_id}", "/policies"):
        page = await viewer_browser.get(path)
        assert page.status_code == 200, path
        assert "ada@example.com" not in page.text, path
        assert viewer_browser.forms(page) == [], path
    assert "Ada" in (await viewer_browser.get("/contacts")).text
    posts = {"/contacts": {"name": "Eve"}, f"/contacts/{contact_id}/edit": {"name": "Eve"},
             f"/contacts/{contact_id}/delete": {}, f"/contacts/{contact_id}/points": {
                 "kind": "email", "address": "eve@example.com"},
             f"/points/{point_id}/verify": {}, f"/points/{point_id}/confirm": {"code": "1"},
             f"/points/{point_id}/delete": {}, f"/points/{point_id}/edit": {"version": "1"},
             "/policies": {"name": "p", "contact_ids": str(contact_id), "all_monitors": "1"}}
    for path, form in posts.items():
        answer = await viewer_browser.post(path, form)
        assert answer.status_code == 403, (path, answer.text[:300])
        assert "this needs the member role" in answer.text
    assert await snapshot(database_url, owner.org_id) == before


async def test_a_stranger_finds_nothing_of_another_organisation(
        owner_browser: Browser, stranger_browser: Browser, owner: Person,
        database_url: str) -> None:
    contact_id, point_id = await add_ada(owner_browser)
    policy = await owner_browser.post("/policies", {
        "name": "Ada's", "contact_ids": str(contact_id), "all_monitors": "1"})
    assert policy.status_code == 303
    before = await snapshot(database_url, owner.org_id)
    for path in ("/contacts", "/policies"):
        page = await stranger_browser.get(path)
        assert page.status_code == 200 and "Ada" not in page.text
    for path in (f"/contacts/{contact_id}", f"/points/{point_id}"):
        assert (await stranger_browser.get(path)).status_code == 404
    policy_id = await only_policy_id(database_url, owner.org_id)
    for path in (f"/contacts/{contact_id}/edit", f"/contacts/{contact_id}/delete",
                 f"/contacts/{contact_id}/points", f"/points/{point_id}/verify",
                 f"/points/{point_id}/confirm", f"/points/{point_id}/delete",
                 f"/points/{point_id}/edit",
                 f"/policies/{policy_id}/delete"):
        answer = await stranger_browser.post(path, {
            "name": "mine", "version": "1", "kind": "email", "address": "s@example.com",
            "code": "123456"})
        assert answer.status_code == 404, (path, answer.text[:300])
    assert await snapshot(database_url, owner.org_id) == before


async def only_policy_id(database_url: str, org_id: int) -> int:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        found = (await connection.execute(select(n.alert_policies.c.id).where(
            n.alert_policies.c.org_id == org_id))).scalar_one()
    await engine.dispose()
    return int(found)


async def test_a_sub_account_is_refused_the_recipients_pages(
        client: httpx.AsyncClient, owner: Person, browse: Browse) -> None:
    limited = await sub_account(client, owner, "client@example.com", ["client"])
    browser = await browse(limited.email, organisation_id=owner.org_id)
    for path in ("/contacts", "/policies", "/contacts/1"):
        answer = await browser.get(path)
        assert answer.status_code == 403, path
        assert "Olga" not in answer.text
    assert (await browser.post("/contacts", {"name": "Mallory"})).status_code == 403
    assert 'href="/contacts"' not in (await browser.get("/")).text


async def test_bad_input_is_named_beside_its_field_and_changes_nothing(
        owner_browser: Browser, owner: Person, database_url: str) -> None:
    contact_id, _ = await add_ada(owner_browser)
    before = await snapshot(database_url, owner.org_id)
    zone = await owner_browser.post("/contacts", {"name": "Bob", "timezone": "Mars/Base"})
    assert zone.status_code == 422
    assert "timezone: unknown time zone" in zone.text
    assert 'value="Bob"' in zone.text  # what was typed stays
    taken = await owner_browser.post("/contacts", {"name": "Ada"})
    assert taken.status_code == 409 and "name: a contact named" in taken.text
    phone = await owner_browser.post(f"/contacts/{contact_id}/points", {
        "kind": "sms", "address": "call me", "events": ["down"]})
    assert phone.status_code == 422 and "address: " in phone.text
    delay = await owner_browser.post(f"/contacts/{contact_id}/points", {
        "kind": "email", "address": "bob@example.com", "escalation_minutes": "7"})
    assert delay.status_code == 422 and "escalation_minutes: must be one of" in delay.text
    edit = await owner_browser.post(f"/contacts/{contact_id}/edit", {
        "name": "Ada", "timezone": "Nowhere", "language": "en", "version": "1"})
    assert edit.status_code == 422 and "timezone: unknown time zone" in edit.text
    stale = await owner_browser.post(f"/contacts/{contact_id}/edit", {
        "name": "Ada L.", "timezone": "UTC", "language": "en", "version": "7"})
    assert stale.status_code == 412 and "changed since" in stale.text
    assert await snapshot(database_url, owner.org_id) == before


async def test_a_contact_is_edited_and_deleted(owner_browser: Browser) -> None:
    contact_id, point_id = await add_ada(owner_browser)
    edited = await owner_browser.post(f"/contacts/{contact_id}/edit", {
        "name": "Ada Lovelace", "timezone": "Europe/London", "language": "en",
        "version": "1"})
    assert edited.status_code == 303
    assert "Europe/London" in (await owner_browser.get(f"/contacts/{contact_id}")).text
    removed = await owner_browser.post(f"/points/{point_id}/delete")
    assert removed.headers["location"] == f"/contacts/{contact_id}"
    assert (await owner_browser.get(f"/points/{point_id}")).status_code == 404
    deleted = await owner_browser.post(f"/contacts/{contact_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/contacts"
    assert "Ada Lovelace" not in (await owner_browser.get("/contacts")).text


async def test_a_form_without_its_token_changes_nothing(
        owner_browser: Browser, owner: Person, database_url: str) -> None:
    contact_id, point_id = await add_ada(owner_browser)
    before = await snapshot(database_url, owner.org_id)
    for path, form in (("/contacts", {"name": "Eve"}), (f"/points/{point_id}/delete", {}),
                       (f"/contacts/{contact_id}/delete", {})):
        answer = await owner_browser.http.post(path, data=form)
        assert answer.status_code == 403, path
    assert await snapshot(database_url, owner.org_id) == before


async def test_each_status_shows_and_only_a_point_that_needs_it_offers_a_code(
        owner_browser: Browser, database_url: str) -> None:
    contact_id, failing = await add_ada(owner_browser)
    opted_out = created_id(await owner_browser.post(f"/contacts/{contact_id}/points", {
        "kind": "sms", "address": "+48600100200", "events": ["down"]}), "points")
    engine = create_engine(database_url)
    p = n.contact_points.c
    async with engine.begin() as connection:
        now = datetime.now(UTC)
        await connection.execute(update(n.contact_points).where(p.id == failing).values(
            confirmed_at=now, failing_since=now, failing_reason="mailbox full"))
        await connection.execute(update(n.contact_points).where(p.id == opted_out).values(
            opted_out_at=now))
    await engine.dispose()
    listed = (await owner_browser.get("/contacts")).text
    assert ">failing<" in listed and ">opted out<" in listed
    failing_page = (await owner_browser.get(f"/points/{failing}")).text
    assert "mailbox full" in failing_page and f"/points/{failing}/verify" in failing_page
    opted_out_page = (await owner_browser.get(f"/points/{opted_out}")).text
    assert f"/points/{opted_out}/verify" not in opted_out_page
    refused = await owner_browser.post(f"/points/{opted_out}/verify")
    assert refused.status_code == 409 and "opted out" in refused.text


async def test_a_points_use_changes_and_a_bad_priority_is_named(
        owner_browser: Browser, viewer_browser: Browser) -> None:
    _, point_id = await add_ada(owner_browser)
    changed = await owner_browser.post(f"/points/{point_id}/edit", {
        "version": "1", "events": ["down", "expiry"], "escalation_minutes": "15",
        "priority": "3"})
    assert changed.status_code == 303
    page = (await owner_browser.get(f"/points/{point_id}")).text
    assert "<dd>down, expiry</dd>" in page and "<dd>15</dd>" in page and "<dd>3</dd>" in page
    bad = await owner_browser.post(f"/points/{point_id}/edit", {
        "version": "2", "events": ["down"], "priority": "2000"})
    assert bad.status_code == 422 and "priority: " in bad.text
    assert 'value="2000"' in bad.text  # what was typed stays
    stale = await owner_browser.post(f"/points/{point_id}/edit", {
        "version": "1", "events": ["down"]})
    assert stale.status_code == 412
    refused = await viewer_browser.post(f"/points/{point_id}/edit", {
        "version": "2", "events": ["up"]})
    assert refused.status_code == 403
    assert "<dd>down, expiry</dd>" in (await owner_browser.get(f"/points/{point_id}")).text


async def test_a_visitor_without_a_session_is_sent_to_log_in(
        client: httpx.AsyncClient) -> None:
    for path in ("/contacts", "/contacts/1", "/points/1", "/policies"):
        answer = await client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next={path}"
