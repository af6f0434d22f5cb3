"""Export: everything Dozor holds about an organisation, as one zip archive streamed in
pieces (a large account is never held in memory whole).

The archive has one JSON Lines file per table (``<table>.jsonl``, one row per line) and
``manifest.json`` describing it: when, for whom, and each file's columns with their
types and row count. Every table is either exported (``SCOPES`` says how its rows are
found: by organisation, by monitor, by page, ...) or left out for a stated reason
(``NOT_EXPORTED``); a test fails for a table that is neither. Secrets (password, token
and code hashes, two-factor and webhook secrets) are never exported: ``REDACTED``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from dozor.store import account_tables as a
from dozor.store import incident_tables as i
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import status_tables as st
from dozor.store import tables as t

FORMAT = 1  # the archive's layout version, in the manifest
BATCH = 2_000  # rows read and written between two yields

Scope = Callable[[int], ColumnElement[bool]]


def _own(table: Table) -> Scope:
    return lambda org: table.c.org_id == org


def _monitors(table: Table) -> Scope:
    return lambda org: table.c.monitor_id.in_(
        select(t.monitors.c.id).where(t.monitors.c.org_id == org))


def _pages(table: Table) -> Scope:
    return lambda org: table.c.page_id.in_(
        select(st.status_pages.c.id).where(st.status_pages.c.org_id == org))


def _members(table: Table, column: str = "user_id") -> Scope:
    return lambda org: table.c[column].in_(
        select(a.memberships.c.user_id).where(a.memberships.c.org_id == org))


SCOPES: dict[str, Scope] = {
    "organizations": lambda org: t.organizations.c.id == org,
    "users": _members(a.users, "id"),
    "memberships": _own(a.memberships),
    "sessions": _own(a.sessions),
    "api_tokens": _own(a.api_tokens),
    "recovery_codes": _members(a.recovery_codes),
    "email_tokens": _members(a.email_tokens),
    "audit_log": _own(a.audit_log),
    "monitors": _own(t.monitors),
    "monitor_state": _monitors(t.monitor_state),
    "results": _monitors(t.results),
    "rollups_hourly": _monitors(t.rollups_hourly),
    "rollups_daily": _monitors(t.rollups_daily),
    "state_changes": _own(t.state_changes),
    "incidents": _own(t.incidents),
    "incident_acknowledgements": _own(i.incident_acknowledgements),
    "incident_comments": _own(i.incident_comments),
    "maintenance_windows": _own(t.maintenance_windows),
    "contacts": _own(n.contacts),
    "contact_points": _own(n.contact_points),
    "consents": _own(n.consents),
    "verifications": _own(n.verifications),
    "alert_policies": _own(n.alert_policies),
    "messages": _own(n.messages),
    "message_events": lambda org: n.message_events.c.message_id.in_(
        select(n.messages.c.id).where(n.messages.c.org_id == org)),
    "status_pages": _own(st.status_pages),
    "status_page_groups": _pages(st.status_page_groups),
    "status_page_monitors": _pages(st.status_page_monitors),
    "status_notes": _pages(st.status_notes),
    "status_subscribers": _pages(st.status_subscribers),
    "erasure_requests": _own(pv.erasure_requests),
    "breach_notices": _own(pv.breach_notices),
    "breaches": lambda org: pv.breaches.c.id.in_(
        select(pv.breach_notices.c.breach_id).where(pv.breach_notices.c.org_id == org)),
}
NOT_EXPORTED = {
    "meta": "the installation's bookkeeping (migration marks, rollup progress)",
    "locations": "names of the installation's checking locations; results carry their id",
    "notify_channels": "the operator's provider accounts and their credentials",
    "data_keys": "key material: the account's data key, wrapped by the instance key",
    "instance_keys": "the installation's key material (the lookup key), wrapped",
    "probes": "the operator's remote checking agents, shared by every organisation",
    "server_nodes": "the installation's running server processes and their heartbeats",
    "monitor_leases": "which server process checks which monitor (bookkeeping)",
    "rate_limit_hits": "keyed digests of the IP addresses, addresses and ids that hit a "
                       "rate limit lately, of no organisation; gone within two hours",
    "late_hours": "the rollup job's list of hours to roll up again (goes with the "
                  "monitor); the results and rollups it points at are exported",
}
REDACTED = {
    "users": {"password_hash", "totp_secret"},
    "sessions": {"token_hash"},
    "api_tokens": {"token_hash"},
    "recovery_codes": {"code_hash"},
    "email_tokens": {"token_hash"},
    "verifications": {"code_hash"},
    "contact_points": {"secret"},
    # A subscriber's links: whoever holds them confirms or ends the subscription.
    "status_subscribers": {"confirm_hash", "unsubscribe_token"},
}


def _contact_points(table: Table) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda org, contact: table.c.point_id.in_(
        select(n.contact_points.c.id).where(n.contact_points.c.org_id == org,
                                            n.contact_points.c.contact_id == contact))


# What is held about one contact (a person who receives alerts, perhaps without an
# account): themselves, their points, the consent ledger, codes sent, messages.
CONTACT_SCOPES: dict[str, Callable[[int, int], ColumnElement[bool]]] = {
    "contacts": lambda org, contact: (n.contacts.c.org_id == org) & (n.contacts.c.id == contact),
    "contact_points": lambda org, contact: (n.contact_points.c.org_id == org)
    & (n.contact_points.c.contact_id == contact),
    "consents": _contact_points(n.consents),
    "verifications": _contact_points(n.verifications),
    "messages": lambda org, contact: (n.messages.c.org_id == org)
    & (n.messages.c.contact_id == contact),
    "message_events": lambda org, contact: n.message_events.c.message_id.in_(
        select(n.messages.c.id).where(n.messages.c.org_id == org,
                                      n.messages.c.contact_id == contact)),
}


@dataclass(frozen=True, slots=True)
class ExportedTable:
    name: str
    query: Select[Any]
    columns: list[str]


def plan(org_id: int, contact_id: int | None = None) -> list[ExportedTable]:
    """What the archive of ``org_id`` (or of one of its contacts) holds, table by table,
    in a stable order."""
    planned = []
    for name in sorted(SCOPES if contact_id is None else CONTACT_SCOPES):
        table = t.metadata.tables[name]
        columns = [c for c in table.columns if c.name not in REDACTED.get(name, set())]
        order = list(table.primary_key.columns) or columns[:1]
        where = SCOPES[name](org_id) if contact_id is None \
            else CONTACT_SCOPES[name](org_id, contact_id)
        planned.append(ExportedTable(name, select(*columns).where(where).order_by(*order),
                                     [c.name for c in columns]))
    return planned


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


class _Pieces(io.RawIOBase):
    """A write-only stream that hands out what was written since the last take."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken, self._pieces = b"".join(self._pieces), []
        return taken


async def archive(conn: AsyncConnection, org_id: int, now: datetime | None = None,
                  contact_id: int | None = None) -> AsyncIterator[bytes]:
    """The zip archive of ``org_id`` (or of one of its contacts), in pieces of about a
    batch of rows each."""
    now = now or datetime.now(UTC)
    pieces = _Pieces()
    manifest: dict[str, Any] = {"format": FORMAT, "organisation_id": org_id,
                                "contact_id": contact_id,
                                "exported_at": now.isoformat(), "files": {},
                                "left_out": NOT_EXPORTED,
                                "redacted": {k: sorted(v) for k, v in REDACTED.items()}}
    with zipfile.ZipFile(pieces, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for table in plan(org_id, contact_id):
            count = 0
            with bundle.open(f"{table.name}.jsonl", "w") as out:
                result = await conn.stream(table.query)
                async for rows in result.partitions(BATCH):
                    for row in rows:
                        out.write(json.dumps({k: _plain(v) for k, v in zip(
                            table.columns, row, strict=True)}, ensure_ascii=False
                        ).encode() + b"\n")
                    count += len(rows)
                    yield pieces.take()
            types = {c.name: str(c.type) for c in t.metadata.tables[table.name].columns
                     if c.name in table.columns}
            manifest["files"][f"{table.name}.jsonl"] = {"rows": count, "columns": types}
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2))
    yield pieces.take()
