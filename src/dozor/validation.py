"""Field types shared by every validated model (settings, monitor specs, check configs).

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Duration).validate_python("1h30m")
datetime.timedelta(seconds=5400)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

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
