"""Versions as ETags: a change needs ``If-Match`` with the version the editor read.

>>> etag(3)
'"3"'
>>> check_version("contact", 3, '"3"')   # matches: go ahead
>>> check_version("contact", 4, '"3"')
Traceback (most recent call last):
...
dozor.api.problems.Problem: the contact changed since (version 4); read it again and ...
"""

from __future__ import annotations

from dozor.api.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def check_version(what: str, version: int, if_match: str | None) -> None:
    """428 without If-Match, 412 when the object moved on since it was read."""
    if if_match is None:
        raise Problem(428, f"send If-Match with the {what}'s ETag (its version), so a "
                      "change made meanwhile is not overwritten")
    if if_match.strip().removeprefix("W/") not in (etag(version), "*"):
        raise Problem(412, f"the {what} changed since (version {version}); "
                      "read it again and reapply your change")
