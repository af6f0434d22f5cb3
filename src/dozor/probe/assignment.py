"""What a probe is told to check: its location's monitors, read from the server.

The protocol (the server's side is ``api.probes``): ``GET <server>/probe/v1/monitors``
with the probe's bearer token and, once it holds one, ``If-None-Match: "<revision>"``.

- ``200`` with ``{"location", "revision", "monitors": [...]}`` and ``ETag: "<revision>"``:
  the whole assignment (a monitor absent from it is no longer the probe's);
- ``304``: nothing changed since that revision;
- ``401``: the token is wrong or was revoked; the probe stops (:class:`Refused`).

Anything else, or no answer, is :class:`Unreachable`: the probe keeps what it has.

    >>> a = Assignment.model_validate({"location": "waw", "revision": 3, "monitors": []})
    >>> a.location, a.revision
    ('waw', 3)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PATH = "/probe/v1/monitors"
TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)


class Refused(Exception):
    """The server will not have this probe (revoked token, another location): stop."""


class Unreachable(Exception):
    """No usable answer this time; keep the current assignment and ask again later."""


class AssignedMonitor(BaseModel):
    """A monitor as the server sends it: the fields ``ActiveMonitor.from_row`` reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int = Field(ge=1)
    kind: str
    config: dict[str, Any]
    interval_ms: int = Field(ge=1)
    retry_interval_ms: int = Field(ge=1)
    timeout_ms: int = Field(ge=1)
    confirm_after: int = Field(1, ge=1)
    recover_after: int = Field(1, ge=1)
    tags: list[str] = Field(default_factory=list)
    paused: bool = False
    revision: int
    created_at: datetime
    push_token: str | None = None

    # The probe neither evaluates nor shows monitors: their owner and name stay at the server.
    @property
    def org_id(self) -> int:
        return 0

    @property
    def name(self) -> str:
        return f"#{self.id}"


class Assignment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    location: str
    revision: int
    monitors: list[AssignedMonitor]


async def fetch(session: aiohttp.ClientSession, server: str, token: str,
                revision: int | None) -> Assignment | None:
    """The assignment, or None when it is unchanged since ``revision``.

    Raises Refused (stop) or Unreachable (try again later)."""
    headers = {"Authorization": f"Bearer {token}"}
    if revision is not None:
        headers["If-None-Match"] = f'"{revision}"'
    try:
        async with session.get(server.rstrip("/") + PATH, headers=headers,
                               timeout=TIMEOUT) as answer:
            body = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise Unreachable(f"the server is unreachable: {error!r}") from None
    if status == 304:
        return None
    if status == 401:
        raise Refused("the server refused this probe's token (401"
                      f"{_problem(body)}): it was revoked or is wrong")
    if status != 200:
        raise Unreachable(f"the server answered {status}: {body[:200]!r}")
    try:
        return Assignment.model_validate_json(body)
    except ValidationError as error:
        raise Unreachable(f"the server's assignment is not valid: {error}") from None


def _problem(body: bytes) -> str:
    """The problem+json's detail (or title), for the operator reading why."""
    try:
        problem = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(problem, dict):
        return ""
    text = problem.get("detail") or problem.get("title")
    return f": {str(text)[:200]}" if text else ""
