"""A real headless Chromium (Debian's ``chromium``, driven by Playwright with its path;
no browser is downloaded) against the real app under uvicorn on loopback.

Where Chromium is missing the tests skip and say so, unless DOZOR_TEST_REQUIRE_BROWSER=1
(CI sets it), where they fail. A failing test leaves a screenshot of its page in
``test-artifacts/screenshots/`` (or ``$DOZOR_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import insert

from dozor.settings import Settings
from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import Mailbox, fresh_limits_and_cheap_hashes
from tests.servers.dozor import free_port, serving
from tests.servers.smtp import SmtpServer

__all__ = ["fresh_limits_and_cheap_hashes"]  # autouse: fresh rate limits, cheap hashes

CHROMIUM = os.environ.get("DOZOR_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("DOZOR_TEST_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(os.environ.get("DOZOR_TEST_ARTIFACTS",
                                Path(__file__).parent.parent.parent / "test-artifacts"))
PASSWORD = "a long passphrase"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, Any]:
    report = yield
    setattr(item, f"report_{report.when}", report)  # read by the page fixture
    return report


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):  # a path or a command name
        reason = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
        if REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-GB")
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        await opened.screenshot(path=ARTIFACTS / "screenshots" / f"{name}.png", full_page=True)
    await context.close()


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    """A real SMTP server the app mails through (its email channel)."""
    async with SmtpServer() as smtp:
        yield Mailbox(smtp)


@pytest.fixture
async def server(database_url: str, tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[str]:
    """The whole app (engine, alert delivery, API, dashboard), as ``dozor serve`` runs it,
    mailing through ``mailbox``."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(insert(n.notify_channels).values(
            name="mail", kind="email", priority=0, enabled=True,
            config={"host": "127.0.0.1", "port": mailbox.smtp.port, "security": "none",
                    "from-address": "dozor@example.com"},
            callback_token=secrets.token_urlsafe(16), created_at=datetime.now(UTC)))
    await engine.dispose()
    port = free_port()
    settings = Settings.model_validate({
        "data_dir": tmp_path, "database_url": database_url, "reload_interval": "1s",
        "public_url": f"http://127.0.0.1:{port}"})
    async with serving(settings, port) as (base_url, _):
        yield base_url


async def sign_up_in_browser(page: Page, server: str, email: str = "ala@example.com") -> None:
    """The first run: the log-in page offers to create the owner's account."""
    await page.goto(server)
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Name").fill("Ala")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    await page.get_by_role("button", name="Create an account").click()
    await page.wait_for_url(f"{server}/")
