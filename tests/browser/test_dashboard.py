"""The dashboard in a real browser: the first log-in, adding a monitor, watching it go
down and come back without reloading the page, and the language switch."""

from __future__ import annotations

import json
import re
import zipfile

from playwright.async_api import Page, expect

from tests.browser.conftest import PASSWORD, sign_up_in_browser
from tests.servers.http import LocalHttpServer


async def test_the_first_person_creates_the_owner_account_and_logs_in_again(
        page: Page, server: str) -> None:
    await sign_up_in_browser(page, server)
    await expect(page.get_by_text("No monitors yet.")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{server}/login")
    await expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
    await page.get_by_label("Email").fill("ala@example.com")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong email, password or code")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{server}/")


async def test_a_new_monitor_goes_down_and_up_live(page: Page, server: str) -> None:
    async with LocalHttpServer() as site:
        site.serve("/health", body="ok")
        await sign_up_in_browser(page, server)
        await page.get_by_role("link", name="Add monitor").first.click()
        await page.get_by_label("Name").fill("Shop")
        await page.get_by_label("Target (URL, host:port, host or domain)").fill(
            site.url("/health"))
        await page.get_by_label("Interval").fill("1s")
        await page.get_by_role("button", name="Add monitor").click()
        await expect(page.get_by_role("heading", name="Shop")).to_be_visible()
        await page.goto(server)
        state = page.locator("tr", has_text="Shop").locator("[data-state]")
        await expect(state).to_have_text("up", timeout=20_000)
        # From here on the page is not reloaded: the marker would be gone if it were.
        await page.evaluate("window.stillTheSamePage = true")
        site.serve("/health", status=503, body="down for maintenance")
        await expect(state).to_have_text("down", timeout=20_000)
        await expect(state).to_have_class("state s-down")
        site.serve("/health", body="ok")
        await expect(state).to_have_text("up", timeout=20_000)
        assert await page.evaluate("window.stillTheSamePage") is True


async def test_bad_input_names_the_field_and_adds_nothing(page: Page, server: str) -> None:
    await sign_up_in_browser(page, server)
    await page.goto(f"{server}/new")
    await page.get_by_label("Name").fill("Broken")
    await page.get_by_label("Target (URL, host:port, host or domain)").fill("not a url")
    await page.get_by_label("Interval").fill("soon")
    await page.get_by_role("button", name="Add monitor").click()
    await expect(page.get_by_text("not a duration")).to_be_visible()
    await expect(page.get_by_label("Name")).to_have_value("Broken")  # what was typed stays
    await page.goto(server)
    await expect(page.get_by_text("No monitors yet.")).to_be_visible()


async def test_the_language_follows_the_users_choice(page: Page, server: str) -> None:
    await sign_up_in_browser(page, server)
    await page.get_by_role("button", name="pl", exact=True).click()
    await expect(page.get_by_role("link", name="Dodaj monitor").first).to_be_visible()
    await page.reload()
    await expect(page.get_by_text("Nie ma jeszcze monitorów.")).to_be_visible()


async def test_a_monitor_is_edited_as_yaml_and_pause_takes_effect(page: Page,
                                                                   server: str) -> None:
    await sign_up_in_browser(page, server)
    await page.goto(f"{server}/new")
    await page.get_by_label("Name").fill("Database")
    await page.get_by_label("Kind").select_option("tcp")
    await page.get_by_label("Target (URL, host:port, host or domain)").fill("127.0.0.1:9")
    await page.get_by_role("button", name="Add monitor").click()
    await page.get_by_role("link", name="Edit").click()
    config = page.get_by_label("Configuration")
    await expect(config).to_have_value(re.compile(r"port: 9"))
    text = await config.input_value()
    await config.fill(text.replace("port: 9", "port: 70000"))
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("port")
    await config.fill(text.replace("interval: 1m", "interval: 2m"))
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("every 120 s")).to_be_visible()
    await page.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("button", name="Resume")).to_be_visible()
    await expect(page.locator("[data-state]")).to_have_text("paused", timeout=10_000)


async def test_the_owner_downloads_the_accounts_data(page: Page, server: str) -> None:
    await sign_up_in_browser(page, server)
    await page.get_by_role("link", name="Your data").click()
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Export data").click()
    download = await waiting.value
    assert download.suggested_filename.startswith("dozor-export-1-")
    archive = zipfile.ZipFile(await download.path())
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["files"]["users.jsonl"]["rows"] == 1
    [user] = [json.loads(line) for line in archive.read("users.jsonl").decode().splitlines()]
    assert user["email"] == "ala@example.com" and "password_hash" not in user
