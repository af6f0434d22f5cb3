"""Field types shared by every validated model (settings, monitor specs, check configs).

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Duration).validate_python("1h30m")
datetime.timedelta(seconds=5400)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from dozor.core.durations import format_duration, parse_duration


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)  # a bare number means seconds
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A duration written as people write it: ``30s``, ``5m``, ``1h30m``, ``14d``, or seconds."""


def _one_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


Label = Annotated[str, AfterValidator(_one_line)]
"""A name or tag: one line without control characters (PostgreSQL refuses NUL in text,
and a line break in a name would forge lines in alerts and logs)."""


LOCATION_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
LocationName = Annotated[str, Field(min_length=1, max_length=64, pattern=LOCATION_PATTERN)]
"""Where checks run from: the ``location`` setting of a server, or a probe's location."""
