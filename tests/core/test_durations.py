from __future__ import annotations

from datetime import timedelta

import pytest

from dozor.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("14d", 14 * 86400), ("500ms", 0.5),
     ("90", 90), (" 2 h ", 7200), ("1w", 604800), ("1.5s", 1.5)],
)
def test_it_reads_human_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "5x", "-5s", "5s5"])
def test_it_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "5m", "2h", "14d", "500ms", "90s", "1500ms"])
def test_formatting_reads_back_the_same(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
