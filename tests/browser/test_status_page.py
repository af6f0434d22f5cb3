"""A public status page in a real browser: a visitor reads it, subscribes, confirms by
the mailed link, and the next note reaches them by email with a way out."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, Page, expect

from tests.api.conftest import Mailbox, body
from tests.browser.conftest import PASSWORD, sign_up_in_browser

VISITOR = "visitor@example.com"


async def test_a_visitor_reads_subscribes_confirms_and_hears_of_the_next_note(
        page: Page, browser: Browser, server: str, mailbox: Mailbox) -> None:
    await sign_up_in_browser(page, server)
    async with httpx.AsyncClient(base_url=server) as api:
        token = (await api.post("/api/v1/sessions", json={
            "email": "ala@example.com", "password": PASSWORD})).json()["token"]
        owner = {"Authorization": f"Bearer {token}"}
        monitor = (await api.post("/api/v1/monitors", headers=owner, json={
            "name": "shop backend 10.0.0.7", "kind": "tcp", "host": "127.0.0.1",
            "port": 9, "interval": "1h"})).json()
        created = await api.post("/api/v1/status-pages", headers=owner, json={
            "slug": "acme", "title": "Acme status", "published": True, "groups": [
                {"name": "Web", "monitors": [{"monitor_id": monitor["id"],
                                              "display_name": "Shop"}]}]})
        assert created.status_code == 201, created.text

        visitor = await (await browser.new_context(locale="en-GB")).new_page()
        await visitor.goto(f"{server}/status/acme")
        await expect(visitor.get_by_role("heading", name="Acme status")).to_be_visible()
        await expect(visitor.get_by_text("Shop", exact=True)).to_be_visible()
        await expect(visitor.get_by_text("10.0.0.7")).to_have_count(0)  # never the target
        await visitor.get_by_label("Email address").fill(VISITOR)
        await visitor.get_by_role("button", name="Subscribe").click()
        await expect(visitor.get_by_text("a link to confirm the subscription")).to_be_visible()

        [mail] = await mailbox.wait(VISITOR, "Confirm")
        link = re.search(r"http://127\.0\.0\.1:\d+/status/confirm/\S+", body(mail))
        assert link, body(mail)
        await visitor.goto(link.group())
        await visitor.get_by_role("button", name="Yes, subscribe me").click()
        await expect(visitor.get_by_role("heading", name="Subscription confirmed")
                     ).to_be_visible()

        posted = await api.post(f"/api/v1/status-pages/{created.json()['id']}/notes",
                                headers=owner, json={"status": "investigating",
                                                     "text": "Checkout is slow."})
        assert posted.status_code == 201, posted.text
    update = (await mailbox.wait(VISITOR, "Acme status", count=2, within=20))[-1]
    assert "Checkout is slow." in body(update)
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    await visitor.goto(f"{server}/status/acme")
    await expect(visitor.get_by_text("Checkout is slow.")).to_be_visible()
