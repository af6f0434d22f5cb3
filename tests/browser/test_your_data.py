"""Your data in a real browser: the owner restricts processing and resumes it, then erases
the account after typing its short name, and can no longer log in."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import PASSWORD, sign_up_in_browser


async def test_the_owner_restricts_then_erases_the_account(page: Page, server: str) -> None:
    await sign_up_in_browser(page, server)
    await page.get_by_role("link", name="Your data").click()
    await expect(page.get_by_role("heading", name="Your data", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Restrict processing").click()
    await expect(page.get_by_text("Processing is restricted since")).to_be_visible()
    await page.get_by_role("button", name="Resume processing").click()
    await expect(page.get_by_role("button", name="Restrict processing")).to_be_visible()

    slug = await page.locator("#erasure code").inner_text()
    field = page.get_by_label("Type the organisation's short name to confirm:")
    await field.fill("not-" + slug)
    await page.get_by_role("button", name="Erase the account").click()
    await expect(page.get_by_text(f"type the account's slug ({slug}) to confirm")).to_be_visible()
    await page.get_by_label("Type the organisation's short name to confirm:").fill(slug)
    await page.get_by_role("button", name="Erase the account").click()
    await expect(page.get_by_role("heading", name="Erasure requested")).to_be_visible()

    await page.goto(f"{server}/login")
    await page.get_by_label("Email").fill("ala@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong email, password or code")
