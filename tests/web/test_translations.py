"""Every text a person reads in the web templates has its Polish in the catalogue."""

from __future__ import annotations

import re
from importlib import resources

from babel.messages.pofile import read_po

WEB = resources.files("dozor.web")
# _("text") or _('text'), as the templates write them.
TEXT = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def template_texts() -> dict[str, set[str]]:
    texts: dict[str, set[str]] = {}
    for template in (WEB / "templates").iterdir():
        if template.name.endswith(".html"):
            for double, single in TEXT.findall(template.read_text(encoding="utf-8")):
                texts.setdefault(double or single, set()).add(template.name)
    return texts


def test_every_template_text_has_a_polish_translation() -> None:
    with (WEB / "locale" / "pl" / "LC_MESSAGES" / "dozor.po").open("rb") as source:
        catalogue = read_po(source, locale="pl")
    texts = template_texts()
    assert "Get updates by email" in texts  # the scan finds what it should
    translated = {message.id for message in catalogue if message.id and message.string}
    missing = {text: sorted(where) for text, where in texts.items()
               if text not in translated}
    assert missing == {}
