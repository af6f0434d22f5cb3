"""Every message text exists in each language, with the same placeholders, so an event
added in English alone (or a Polish text naming another value) fails here, not when it
is sent."""

from __future__ import annotations

from string import Formatter

import pytest

from dozor.notify.templates import LANGUAGES, NEVER_HEARD, TEXTS


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


@pytest.mark.parametrize("event", sorted(TEXTS))
def test_each_event_reads_in_every_language_with_the_same_values(event: str) -> None:
    texts = TEXTS[event]
    assert sorted(texts) == sorted(LANGUAGES)
    english_subject, english_body = texts["en"]
    for language in LANGUAGES:
        subject, body = texts[language]
        assert placeholders(subject) == placeholders(english_subject), (event, language)
        assert placeholders(body) == placeholders(english_body), (event, language)


def test_a_probe_never_heard_from_reads_in_every_language() -> None:
    assert sorted(NEVER_HEARD) == sorted(LANGUAGES)
    assert all(placeholders(text) == {"added"} for text in NEVER_HEARD.values())
