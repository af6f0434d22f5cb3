"""Two-factor log-in from the account page: set up, confirmed with a code (recovery codes
shown once), asked for at log-in, and turned off with a recovery code."""

from __future__ import annotations

import re

import httpx
import pyotp

from tests.api.conftest import PASSWORD, Person
from tests.web.conftest import Browser


async def set_up(browser: Browser) -> str:
    """Start two-factor log-in; the key the page shows."""
    started = await browser.post("/account/two-factor")
    assert started.status_code == 303
    page = await browser.get("/account")
    key = re.search(r'<code class="key">([A-Z2-7]+)</code>', page.text)
    assert key is not None and "/account/two-factor/confirm" in browser.forms(page)
    return key.group(1)


async def test_two_factor_is_set_up_asked_for_and_turned_off(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser) -> None:
    key = await set_up(owner_browser)
    wrong = await owner_browser.post("/account/two-factor/confirm", {"code": "000000"})
    assert wrong.status_code == 422 and '<p class="error">wrong code</p>' in wrong.text
    confirmed = await owner_browser.post("/account/two-factor/confirm",
                                         {"code": pyotp.TOTP(key).now()})
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", confirmed.text)
    assert len(codes) == 10
    again = await owner_browser.get("/account")
    assert codes[0] not in again.text and key not in again.text
    assert owner_browser.forms(again)[0] == "/account/two-factor/off"
    no_code = await client.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert no_code.status_code == 401
    with_code = await client.post("/login", data={"email": owner.email, "password": PASSWORD,
                                                  "code": pyotp.TOTP(key).now()})
    assert with_code.status_code == 303
    client.cookies.clear()
    bad_off = await owner_browser.post("/account/two-factor/off", {"code": "aaaa-bbbb-cccc"})
    assert bad_off.status_code == 422 and "wrong or used code" in bad_off.text
    off = await owner_browser.post("/account/two-factor/off", {"code": codes[0]})
    assert off.status_code == 303
    assert "Set up two-factor log-in" in (await owner_browser.get("/account")).text


async def test_a_blank_code_is_named(owner_browser: Browser) -> None:
    await set_up(owner_browser)
    blank = await owner_browser.post("/account/two-factor/confirm", {"code": ""})
    assert blank.status_code == 422 and '<p class="error">' in blank.text
    assert "/account/two-factor/confirm" in owner_browser.forms(blank)
