"""Every text the templates show through ``_("...")`` has its Polish in the catalogue, so
no page is half in English for a Polish reader."""

from __future__ import annotations

import re
from importlib import resources

from babel.messages.pofile import read_po

from tests.web.conftest import Browser

WEB = resources.files("dozor.web")
TEXT = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def template_texts() -> set[str]:
    texts: set[str] = set()
    for template in (WEB / "templates").iterdir():
        if template.name.endswith(".html"):
            texts |= {double or single for double, single in TEXT.findall(template.read_text())}
    return texts


def test_every_template_text_has_polish() -> None:
    with (WEB / "locale" / "pl" / "LC_MESSAGES" / "dozor.po").open("rb") as source:
        catalogue = read_po(source, locale="pl")
    texts = template_texts()
    assert len(texts) > 100  # the scan found the templates' texts
    missing = sorted(text for text in texts
                     if catalogue.get(text) is None or not catalogue.get(text).string)
    assert missing == []


async def test_the_new_pages_read_in_polish(owner_browser: Browser) -> None:
    await owner_browser.post("/language", {"language": "pl", "next": "/"})
    for path, polish in (("/incidents", "Brak incydentów."), ("/maintenance", "Harmonogram"),
                         ("/messages", "Dziennik wysyłek"), ("/team", "Zaproś e-mailem"),
                         ("/account", "Zmień hasło")):
        page = await owner_browser.get(path)
        assert page.status_code == 200 and polish in page.text, path
