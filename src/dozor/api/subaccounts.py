"""Sub-accounts: memberships limited to the monitors that carry some tags.

Hosted monitoring services let an account give a client or a team a log-in that sees only
their own monitors. Here that is a membership with ``monitor_tags``: with the viewer role
it reads, with the member role it also changes the monitors carrying one of those tags,
their results, uptime and incidents, and nothing organisation-wide (recipients and
policies, maintenance, status pages, members, the delivery and audit logs).

It fails closed: a sub-account reaches only the paths listed in ``REACHABLE``, so a route
added later is refused to sub-accounts until someone decides otherwise.

>>> reachable("/api/v1/monitors/7/uptime"), reachable("/api/v1/contacts")
(True, False)
>>> reachable("/api/v1/accounts")
False
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.store import tables as t

REACHABLE = ("/api/v1/account", "/api/v1/tokens", "/api/v1/sessions", "/api/v1/monitors",
             "/api/v1/incidents")
# Under those, what concerns the whole organisation: its export, restriction, erasure,
# plan and retention are never a sub-account's, whatever its role.
WHOLE_ORGANISATION = ("/api/v1/account/export", "/api/v1/account/privacy",
                      "/api/v1/account/restriction", "/api/v1/account/erasure",
                      "/api/v1/account/plan", "/api/v1/account/retention")


def reachable(path: str) -> bool:
    """
    >>> reachable("/api/v1/account"), reachable("/api/v1/account/erasure")
    (True, False)
    """
    def under(prefixes: tuple[str, ...]) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)
    return under(REACHABLE) and not under(WHOLE_ORGANISATION)


def check_path(principal: Principal, path: str) -> None:
    """403 for a sub-account on a path outside its reach."""
    if principal.restricted and not reachable(path):
        raise Problem(403, "a sub-account sees only its own monitors and their incidents")


def require_whole_organisation(principal: Principal) -> None:
    """For acts that reach beyond some monitors (bulk apply of a whole file, say)."""
    if principal.restricted:
        raise Problem(403, "a sub-account cannot do this: it reaches beyond its monitors")


def check_tags(principal: Principal, tags: list[str] | tuple[str, ...]) -> None:
    """A sub-account's new or changed monitor must stay within its reach."""
    if not principal.sees(tags):
        allowed = ", ".join(principal.monitor_tags or ())
        raise Problem(422, f"tags: a sub-account's monitors carry one of its tags ({allowed})",
                      errors=[{"field": "tags", "message": f"must include one of: {allowed}"}])


async def visible_monitor_ids(conn: AsyncConnection,
                              principal: Principal) -> frozenset[int] | None:
    """The ids of the monitors a sub-account sees; None for the whole organisation."""
    if not principal.restricted:
        return None
    m = t.monitors.c
    rows = (await conn.execute(select(m.id, m.tags).where(m.org_id == principal.org_id))).all()
    return frozenset(row.id for row in rows if principal.sees(row.tags))
