"""Tables of the data lifecycle: erasure requests and breach notices. Migration 0014
creates them (and ``organizations.restricted_at``).

An erasure request outlives what it erased: it holds ids and dates only, no personal
data, so it can prove when each request was answered.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from dozor.store.tables import UTCDateTime, _created, metadata

erasure_requests = Table(
    "erasure_requests", metadata,
    Column("id", Integer, primary_key=True),
    # No foreign keys: the row stays after its organisation or contact is gone.
    Column("org_id", Integer, nullable=False),
    Column("contact_id", Integer),  # NULL: the whole account
    Column("source", String(12), nullable=False),  # request | operator | retention
    Column("requested_by", Integer),  # the user's id (an id, not who they are)
    Column("requested_at", UTCDateTime, nullable=False),
    Column("due_by", UTCDateTime, nullable=False),  # 5 business days after the request
    Column("done_at", UTCDateTime),
    Column("detail", JSON),  # rows removed, table by table
    Index("ix_erasure_requests_open", "done_at", "due_by"),
    sqlite_autoincrement=True,
)

# A personal-data breach as the operator recorded it, and the notice each affected
# account's owners were sent (within 72 hours of its detection, as the law asks).
breaches = Table(
    "breaches", metadata,
    Column("id", Integer, primary_key=True),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),  # what happened and what it means, as sent
    _created(),
    sqlite_autoincrement=True,
)

breach_notices = Table(
    "breach_notices", metadata,
    Column("breach_id", ForeignKey("breaches.id", ondelete="CASCADE"), primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("messages", Integer, nullable=False),  # notices queued to the owners
    Column("within_deadline", Boolean, nullable=False),  # queued within 72 hours of detection
)
