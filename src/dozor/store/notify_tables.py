"""Tables of alert delivery: contacts, their points, consent, channels, the outbox.

They share ``tables.metadata``; migration 0002 creates them. Personal data here (names,
addresses, message texts) is what the privacy part exports, erases and expires.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from dozor.store.sealed import PersonalText, SealedJSON, SealedText
from dozor.store.tables import UTCDateTime, _created, metadata


def _version() -> Column[int]:
    """Bumped by every change made through the API: its ETag, checked against If-Match."""
    return Column("version", Integer, nullable=False, default=1, server_default="1")


contacts = Table(
    "contacts", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("language", String(8), nullable=False, default="en"),
    Column("is_owner", Boolean, nullable=False, default=False),  # hears about failing points
    _version(),
    _created(),
    UniqueConstraint("org_id", "name"),
    sqlite_autoincrement=True,
)

contact_points = Table(
    "contact_points", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    # Normalised by notify.points, then sealed; SQL finds and compares it by its digest.
    Column("address", PersonalText, nullable=False),
    Column("address_digest", String(64), nullable=False),  # keys.digest(kind, address)
    Column("secret", SealedText),  # webhook signing secret
    Column("priority", SmallInteger, nullable=False, default=0),  # failover order
    Column("events", JSON, nullable=False),  # ["down", "up", ...]
    Column("active_hours", JSON),  # {"days": [0..6], "start": "HH:MM", "end": "HH:MM"}
    Column("outside_hours", String(8), nullable=False, default="hold"),  # hold | next
    Column("escalation_minutes", SmallInteger, nullable=False, default=0),
    Column("confirmed_at", UTCDateTime),
    Column("opted_out_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("failing_reason", Text),
    Column("unsubscribe_token", String(64), nullable=False, unique=True),
    _version(),
    _created(),
    UniqueConstraint("org_id", "kind", "address_digest"),
    Index("ix_contact_points_kind_address_digest", "kind", "address_digest"),
    sqlite_autoincrement=True,
)

verifications = Table(
    "verifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("point_id", ForeignKey("contact_points.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("method", String(16), nullable=False),  # code | link | deep_link
    Column("code_hash", String(64), nullable=False),  # sha256 of the code or token
    Column("text_shown", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("failed_tries", SmallInteger, nullable=False, default=0),
    Column("used_at", UTCDateTime),
    _created(),
    Index("ix_verifications_point", "point_id"),
    Index("ix_verifications_org_created", "org_id", "created_at"),
)

# The consent ledger: every grant and withdrawal, kept when the point is deleted.
consents = Table(
    "consents", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("point_id", ForeignKey("contact_points.id", ondelete="SET NULL")),
    Column("kind", String(16), nullable=False),
    Column("address", PersonalText, nullable=False),
    Column("action", String(10), nullable=False),  # granted | withdrawn
    Column("method", String(20), nullable=False),  # code, link, deep_link, keyword, ...
    Column("at", UTCDateTime, nullable=False),
    Column("source", PersonalText),  # IP address, phone number or chat the act came from
    Column("user_agent", PersonalText),
    Column("text_shown", Text),  # what the holder saw when agreeing
    Column("detail", Text),
    Index("ix_consents_point_at", "point_id", "at"),
)

notify_channels = Table(
    "notify_channels", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("config", SealedJSON, nullable=False),  # holds tokens and passwords
    Column("priority", SmallInteger, nullable=False, default=0),  # lower is tried first
    Column("enabled", Boolean, nullable=False, default=True),
    Column("callback_token", String(64), nullable=False, unique=True),
    Column("failing_since", UTCDateTime),
    Column("failing_reason", Text),
    _created(),
)

alert_policies = Table(
    "alert_policies", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("contact_ids", JSON, nullable=False),
    # Which monitors, chosen like maintenance windows choose them.
    Column("all_monitors", Boolean, nullable=False, default=False),
    Column("monitor_names", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    _version(),
    _created(),
    UniqueConstraint("org_id", "name"),
)

# The outbox. A row is written in the transaction that decided to send it; the dispatcher
# moves it along queued -> sending -> accepted -> delivered (or failed, refused, cancelled).
messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True),
    # NULL: a notice to the installation's operator (``notify.operator_mail``), which
    # belongs to no organisation (migration 0020).
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE")),
    Column("contact_id", ForeignKey("contacts.id", ondelete="SET NULL")),
    Column("point_id", ForeignKey("contact_points.id", ondelete="SET NULL")),
    # An account email (password reset, invitation) goes to an address, not to a contact
    # point: the person asked for it, so no confirmation of the point is needed.
    Column("to_address", PersonalText),
    # A status page subscriber's mail (``notify.subscriber_mail``) names its subscriber,
    # whose confirmation and unsubscribe link the dispatcher reads when it sends. No
    # foreign key: SQLite would copy the whole messages table to add one.
    Column("subscriber_id", Integer),
    Column("monitor_id", ForeignKey("monitors.id", ondelete="SET NULL")),
    Column("incident_id", ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("event", String(20), nullable=False),
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(12), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("attempts", SmallInteger, nullable=False, default=0),
    Column("channel_id", ForeignKey("notify_channels.id", ondelete="SET NULL")),
    Column("provider_id", String(120)),
    Column("batch_key", String(120)),  # the key a digest went out under
    Column("parts", SmallInteger),
    Column("cost", Numeric(10, 4)),
    Column("tracked", Boolean, nullable=False, default=True),
    Column("last_error", Text),
    Column("failover_from", Integer),  # the message this one stands in for
    _created(),
    Column("accepted_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # The queue: only unfinished rows are in this index, so it stays small.
    Index("ix_messages_due", "due_at",
          sqlite_where=text("status IN ('queued', 'sending')"),
          postgresql_where=text("status IN ('queued', 'sending')")),
    Index("ix_messages_point_created", "point_id", "created_at"),
    Index("ix_messages_provider", "provider_id"),
    Index("ix_messages_incident", "incident_id"),
    Index("ix_messages_org", "org_id", "id"),  # the delivery log, newest first (0006)
    sqlite_autoincrement=True,
)

message_events = Table(
    "message_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(12), nullable=False),  # attempt, accepted, retry, failed, receipt...
    Column("channel_id", Integer),
    Column("detail", Text),
    Column("provider_code", String(40)),
    Column("duration_ms", Integer),
    Index("ix_message_events_message", "message_id"),
)
