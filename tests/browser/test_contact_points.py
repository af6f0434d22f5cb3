"""Confirming a contact point in a real browser: the owner adds an address, sends it a
code, a wrong code is refused, and the code from the mail confirms it."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.api.conftest import Mailbox
from tests.browser.conftest import sign_up_in_browser

ON_CALL = "ala.oncall@example.com"


async def test_a_new_point_is_confirmed_with_the_mailed_code(page: Page, server: str,
                                                             mailbox: Mailbox) -> None:
    await sign_up_in_browser(page, server)
    await page.get_by_role("link", name="Contacts").click()
    await page.get_by_role("link", name="Ala").click()
    await page.get_by_label("Kind").select_option("email")
    await page.get_by_label(re.compile(r"^Address")).fill(ON_CALL)
    await page.get_by_role("button", name="Add contact point").click()  # to its page
    await expect(page.get_by_role("heading", level=1)).to_contain_text(ON_CALL)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("unconfirmed")
    await page.get_by_role("button", name="Send code").click()
    await expect(page.get_by_role("status")).to_contain_text("A code is on its way")
    code = await mailbox.code(ON_CALL)
    await page.get_by_label("Code").fill("000000" if code != "000000" else "111111")
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_text("wrong code")).to_be_visible()
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("confirmed")
    await expect(page.get_by_role("heading", level=1)).not_to_contain_text("unconfirmed")
