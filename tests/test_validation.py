from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter

from dozor.validation import Duration


def test_a_duration_reads_text_or_seconds_and_writes_text() -> None:
    adapter = TypeAdapter(Duration)
    assert adapter.validate_python("2m") == adapter.validate_python(120) == timedelta(minutes=2)
    assert adapter.dump_python(timedelta(minutes=2), mode="json") == "2m"
