"""Tables of public status pages: the pages, their groups of monitors, and their notes.
Migration 0007 creates them.

A page belongs to an organisation and shows only that organisation's monitors; the slug
and the custom domain are unique across the installation because both address the page
from outside. Deleting a monitor takes it off every page (its rows cascade).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dozor.store.sealed import PersonalText
from dozor.store.tables import UTCDateTime, _created, metadata

status_pages = Table(
    "status_pages", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("slug", String(63), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("custom_domain", String(253), unique=True),  # lower-case ASCII (IDN as punycode)
    Column("published", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),  # for If-Match; bumped by every change
    _created(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_status_pages_org", "org_id"),
    sqlite_autoincrement=True,
)

status_page_groups = Table(
    "status_page_groups", metadata,
    Column("id", Integer, primary_key=True),
    Column("page_id", ForeignKey("status_pages.id", ondelete="CASCADE"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("name", String(200), nullable=False),
    UniqueConstraint("page_id", "position"),
)

# The page id is repeated here so that a monitor appears at most once on a page.
status_page_monitors = Table(
    "status_page_monitors", metadata,
    Column("group_id", ForeignKey("status_page_groups.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", SmallInteger, primary_key=True),
    Column("page_id", ForeignKey("status_pages.id", ondelete="CASCADE"), nullable=False),
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(200)),  # what visitors read; the monitor's name if none
    UniqueConstraint("page_id", "monitor_id"),
    Index("ix_status_page_monitors_monitor", "monitor_id"),  # deleting a monitor finds them
)

# Updates written for visitors, statuspage.io style: one status and a text each.
status_notes = Table(
    "status_notes", metadata,
    Column("id", Integer, primary_key=True),
    Column("page_id", ForeignKey("status_pages.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # core.statuspage.NOTE_STATUSES
    Column("body", Text, nullable=False),
    Column("incident_id", ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("author_id", ForeignKey("users.id", ondelete="SET NULL")),
    Column("version", BigInteger, nullable=False),
    _created(),
    Column("updated_at", UTCDateTime),
    Index("ix_status_notes_page_created", "page_id", "created_at"),
    sqlite_autoincrement=True,
)

# Visitors who asked for a page's news by email (migration 0012). A row is created
# unconfirmed; only the link mailed to the address confirms it, and the confirmation's
# moment, address and user agent stay on the row as the consent record. Unsubscribing
# keeps the row (when, for the record) and clears the confirmation; asking again starts
# over with a new link.
status_subscribers = Table(
    "status_subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("page_id", ForeignKey("status_pages.id", ondelete="CASCADE"), nullable=False),
    # As normalised by email-validator, then sealed with the page's account's data key.
    Column("email", PersonalText, nullable=False),
    Column("email_digest", String(64), nullable=False),  # keys.digest("email", email)
    Column("language", String(8), nullable=False),
    Column("confirm_hash", String(64)),  # SHA-256 of the link's token, until it is used
    Column("requested_at", UTCDateTime, nullable=False),  # of the latest link
    Column("confirmed_at", UTCDateTime),
    Column("confirmed_ip", PersonalText),
    Column("confirmed_user_agent", PersonalText),
    Column("unsubscribe_token", String(64), nullable=False, unique=True),
    Column("unsubscribed_at", UTCDateTime),
    _created(),
    UniqueConstraint("page_id", "email_digest"),
    Index("ix_status_subscribers_confirm", "confirm_hash"),
    sqlite_autoincrement=True,
)
