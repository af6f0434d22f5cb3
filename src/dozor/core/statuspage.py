"""What a public status page says, decided without I/O: which slugs a page may take, and
how a monitor's state reads to a visitor.

A visitor sees four states of a service, never the monitor's own words (its errors name
hosts, addresses and URLs):

>>> [public_state(s) for s in ("up", "pending", "down", "maintenance", "paused")]
['operational', 'operational', 'outage', 'maintenance', 'unknown']

and one state of the whole page (or of a group) made from its services':

>>> overall(["operational", "outage", "unknown"])
'partial_outage'
>>> overall(["outage", "unknown"])
'major_outage'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dozor.core.types import MonitorState

PUBLIC_STATES = ("operational", "outage", "maintenance", "unknown")
OVERALL_STATES = ("operational", "partial_outage", "major_outage", "maintenance", "unknown")
NOTE_STATUSES = ("investigating", "identified", "monitoring", "resolved", "maintenance", "info")

_STATES = {
    MonitorState.UP: "operational",
    # A failure not confirmed yet is often a blip: the page does not cry wolf before
    # the alerts do.
    MonitorState.PENDING: "operational",
    MonitorState.DOWN: "outage",
    MonitorState.MAINTENANCE: "maintenance",
    MonitorState.PAUSED: "unknown",  # nobody is watching it
    MonitorState.UNKNOWN: "unknown",
}

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# Names the web part or an operator may want for themselves, at the top of the URL
# space or as a sub-domain.
RESERVED_SLUGS = frozenset({
    "about", "account", "admin", "api", "app", "assets", "auth", "blog", "dashboard",
    "docs", "dozor", "favicon-ico", "healthz", "help", "hooks", "login", "logout",
    "mail", "metrics", "new", "ping", "public", "robots-txt", "root", "settings",
    "signup", "static", "status", "support", "system", "web", "www",
})


def public_state(state: str | None) -> str:
    """A monitor's state as a visitor reads it; anything unforeseen is ``unknown``."""
    try:
        return _STATES[MonitorState(state or "unknown")]
    except ValueError:
        return "unknown"


def overall(states: Iterable[str]) -> str:
    """One state for several services (public states): any outage shows; maintenance
    shows when nothing is out; services of unknown state count only if all are.

    >>> overall([]), overall(["unknown"]), overall(["operational", "unknown"])
    ('unknown', 'unknown', 'operational')
    >>> overall(["operational", "maintenance"])
    'maintenance'
    """
    known = [s for s in states if s != "unknown"]
    if not known:
        return "unknown"
    outages = known.count("outage")
    if outages:
        return "major_outage" if outages == len(known) else "partial_outage"
    return "maintenance" if "maintenance" in known else "operational"


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot name a page, or None when it can.

    >>> slug_problem("acme-shop"), slug_problem("www")
    (None, 'is reserved')
    >>> slug_problem("Acme")
    'lowercase letters, digits and hyphens (3-63, not starting or ending with a hyphen)'
    """
    if not _SLUG.fullmatch(slug):
        return ("lowercase letters, digits and hyphens (3-63, not starting or ending with "
                "a hyphen)")
    if slug in RESERVED_SLUGS:
        return "is reserved"
    return None
