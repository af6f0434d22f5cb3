"""The new pages read in Polish for a Polish reader (every template text having its
Polish is tests/dashboard/test_texts.py's)."""

from __future__ import annotations

from tests.web.conftest import Browser


async def test_the_new_pages_read_in_polish(owner_browser: Browser) -> None:
    await owner_browser.post("/language", {"language": "pl", "next": "/"})
    for path, polish in (("/incidents", "Brak incydentów."), ("/maintenance", "Harmonogram"),
                         ("/messages", "Dziennik wysyłek"), ("/team", "Zaproś e-mailem"),
                         ("/account", "Zmień hasło")):
        page = await owner_browser.get(path)
        assert page.status_code == 200 and polish in page.text, path
