"""Every text the dashboard's templates show has its Polish translation."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from babel.messages.pofile import read_po

TEMPLATES = Path(str(resources.files("dozor.web") / "templates"))
CATALOGUE = Path(str(resources.files("dozor.web") / "locale/pl/LC_MESSAGES/dozor.po"))
TEXT = re.compile(r"""_\(\s*(["'])(.+?)\1\s*\)""")


def test_every_template_text_has_a_polish_translation() -> None:
    with CATALOGUE.open("rb") as source:
        catalogue = read_po(source, locale="pl")
    translated = {message.id for message in catalogue if message.id and message.string}
    used = {match.group(2) for template in TEMPLATES.glob("*.html")
            for match in TEXT.finditer(template.read_text())}
    assert used, "no texts found: has the pattern drifted from the templates?"
    missing = sorted(used - translated)
    assert not missing, f"texts without Polish in {CATALOGUE.name}: {missing}"
