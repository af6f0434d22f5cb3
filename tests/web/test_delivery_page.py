"""The delivery log pages: messages with their contact, point kind, channel and attempts,
one message with every attempt; never a channel's settings or a one-time code."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api import seed
from tests.api.conftest import Person, sub_account
from tests.api.test_messages import SECRET, _log
from tests.web.conftest import Browse, Browser
from tests.web.test_incidents_page import incidents


async def test_the_log_lists_messages_and_never_a_secret(
        owner: Person, owner_browser: Browser, database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    page = await owner_browser.get("/messages")
    assert page.status_code == 200
    for shown in ("bob", "ala", "sms-main", "smsapi", "delivered", "failed", "verification",
                  f"/messages/{log['sent']}"):
        assert shown in page.text
    assert SECRET not in page.text and "123456" not in page.text
    failed = await owner_browser.get("/messages?status=failed")
    assert f"/messages/{log['failed']}" in failed.text
    assert f"/messages/{log['sent']}\"" not in failed.text
    assert owner_browser.forms(page) == []


async def test_a_message_shows_its_attempts(owner: Person, owner_browser: Browser,
                                            database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    page = await owner_browser.get(f"/messages/{log['sent']}")
    assert page.status_code == 200
    for shown in ("HTTP 503", "accepted", "receipt", "DELIVRD", "Monitor shop is down."):
        assert shown in page.text
    assert SECRET not in page.text


async def test_a_one_time_code_is_withheld(owner: Person, owner_browser: Browser,
                                           database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    page = await owner_browser.get(f"/messages/{log['code']}")
    assert page.status_code == 200 and "Withheld" in page.text
    assert "123456" not in page.text


async def test_a_viewer_reads_the_log(owner: Person, viewer_browser: Browser,
                                      database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    page = await viewer_browser.get(f"/messages/{log['failed']}")
    assert page.status_code == 200 and "HTTP 500" in page.text
    assert viewer_browser.forms(page) == []


async def test_a_stranger_finds_nothing(owner: Person, stranger_browser: Browser,
                                        database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    assert "sms-main" not in (await stranger_browser.get("/messages")).text
    assert (await stranger_browser.get(f"/messages/{log['sent']}")).status_code == 404
    assert (await stranger_browser.get("/messages/2147483648")).status_code == 404


async def test_a_sub_account_is_refused(client: httpx.AsyncClient, owner: Person,
                                        browse: Browse, database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    member = await sub_account(client, owner, "client@example.com", ["client"])
    limited = await browse(member.email, owner.org_id)
    for path in ("/messages", f"/messages/{log['sent']}"):
        page = await limited.get(path)
        assert page.status_code == 403 and "bob" not in page.text


async def test_an_incidents_messages_are_one_link_away(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    opened, _ = await incidents(client, owner, database_url)
    async with seed.database(database_url) as db:
        about = await seed.message(db, owner.org_id, contact_id=log["bob"],
                                   point_id=log["sms"], incident_id=opened)
    incident = await owner_browser.get(f"/incidents/{opened}")
    assert f'href="/messages?incident={opened}"' in incident.text
    page = await owner_browser.get(f"/messages?incident={opened}")
    assert f"/messages/{about}\"" in page.text
    assert f"/messages/{log['sent']}\"" not in page.text
    everything = await owner_browser.get("/messages?incident=nonsense")
    assert f"/messages/{log['sent']}\"" in everything.text


async def test_older_messages_are_a_page_further(
        owner: Person, owner_browser: Browser, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dozor.web.delivery_page.SHOWN", 2)
    log = await _log(database_url, owner.org_id)
    first = await owner_browser.get("/messages?status=")
    older = re.search(r'href="/messages\?cursor=([\w-]+)"', first.text)
    assert older is not None and f"/messages/{log['sent']}\"" not in first.text
    second = await owner_browser.get(f"/messages?cursor={older.group(1)}")
    assert f"/messages/{log['sent']}\"" in second.text
    assert f"/messages/{log['code']}\"" not in second.text
    mangled = await owner_browser.get("/messages?cursor=%%%")
    assert mangled.status_code == 200 and f"/messages/{log['code']}\"" in mangled.text
