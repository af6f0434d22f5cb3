"""The dashboard's languages: English (the texts in the templates) and Polish, from a
gettext catalogue (``locale/pl/LC_MESSAGES/dozor.po``) read with Babel at start, so no
compile step is needed. The language follows the user's choice, then the browser's.

>>> translator("pl").gettext("Monitors")
'Monitory'
>>> pick(None, "de-DE,pl;q=0.8,en;q=0.5")
'pl'
>>> pick("en", "pl")
'en'
"""

from __future__ import annotations

import functools
from gettext import NullTranslations
from importlib import resources
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("en", "pl")
DEFAULT = "en"


@functools.cache
def translator(language: str) -> NullTranslations:
    """The catalogue of ``language``; English is the templates' own text."""
    if language == DEFAULT or language not in LANGUAGES:
        return NullTranslations()
    path = resources.files("dozor.web") / "locale" / language / "LC_MESSAGES" / "dozor.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def pick(chosen: str | None, accept_language: str | None) -> str:
    """The user's choice if made, else the first of the browser's languages we have."""
    if chosen in LANGUAGES:
        return chosen
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT
