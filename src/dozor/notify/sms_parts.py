"""How many parts an SMS text takes, and in which encoding (GSM 03.38 or UCS-2).

A text in the GSM 7-bit alphabet fits 160 characters in one part and 153 per part when
concatenated (the user data header takes the rest); characters of the extension table
(``{}[]~^\\|€`` and form feed) count twice. Anything else means UCS-2: 70 UTF-16 code units
in one part, 67 per part::

    >>> count_parts("Server down: api.example.com")
    SmsParts(encoding='gsm7', units=28, parts=1)
    >>> count_parts("x" * 161).parts
    2
    >>> count_parts("Serwer nie działa")   # "ł" is not in the GSM alphabet
    SmsParts(encoding='ucs2', units=17, parts=1)
    >>> count_parts("€" * 80)               # 160 septets: still one part
    SmsParts(encoding='gsm7', units=160, parts=1)
"""

from __future__ import annotations

from typing import Literal, NamedTuple

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"gsm7": 160, "ucs2": 70}
CONCATENATED = {"gsm7": 153, "ucs2": 67}


class SmsParts(NamedTuple):
    encoding: Literal["gsm7", "ucs2"]
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int


def gsm7_septets(text: str) -> int | None:
    """Septets the text takes in the GSM 7-bit alphabet, or None if it does not fit it."""
    septets = 0
    for char in text:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def count_parts(text: str) -> SmsParts:
    septets = gsm7_septets(text)
    if septets is not None:
        return SmsParts("gsm7", septets, _parts(septets, "gsm7"))
    units = len(text.encode("utf-16-le")) // 2
    return SmsParts("ucs2", units, _parts(units, "ucs2"))


def _parts(units: int, encoding: Literal["gsm7", "ucs2"]) -> int:
    if units <= SINGLE[encoding]:
        return 1
    per_part = CONCATENATED[encoding]
    return -(-units // per_part)
