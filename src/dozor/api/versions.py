"""Versions as ETags: a change needs ``If-Match`` with the version read, so two editors
never silently overwrite each other (412 when it moved on, 428 without it).

>>> etag(7)
'"7"'
>>> check_version(7, 'W/"7"', "monitor")
"""

from __future__ import annotations

from dozor.api.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def check_version(version: int, if_match: str | None, what: str) -> None:
    """Raise 428 without ``If-Match``, 412 when it names another version (``*``: any)."""
    if if_match is None:
        raise Problem(428, f"send If-Match with the {what}'s ETag (its version), so a "
                      "change made meanwhile is not overwritten")
    if if_match.strip().removeprefix("W/") not in (etag(version), "*"):
        raise Problem(412, f"the {what} changed since (version {version}); "
                      "read it again and reapply your change")
