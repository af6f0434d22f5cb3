"""Tables of what people add to incidents: who acknowledged one, and their comments.
Migration 0006 creates them.

Comments are personal data (their author and what they wrote): each keeps its author's
user id and when it was written, so an export or an erasure finds them by user.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, Table, Text

from dozor.store.tables import UTCDateTime, _created, metadata

# One row per acknowledged incident: the first acknowledgement stands.
incident_acknowledgements = Table(
    "incident_acknowledgements", metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL")),
    Column("at", UTCDateTime, nullable=False),
)

incident_comments = Table(
    "incident_comments", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL")),
    Column("body", Text, nullable=False),
    _created(),
    Index("ix_incident_comments_incident", "incident_id", "id"),
    Index("ix_incident_comments_user", "user_id"),
    sqlite_autoincrement=True,
)
