"""Tables of accounts: users, their memberships in organisations, API tokens, sessions,
one-time email tokens, two-factor recovery codes and the audit log. Migration 0003
creates them (0004 the recovery codes).

A user's address is sealed with the instance key and found by its digest (migration
0022, ``store.accounts``). Secrets are stored as hashes only: passwords with argon2,
tokens with SHA-256 (they are long random strings, so a fast hash is enough and lookups
stay one index probe).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, SmallInteger, String, Table

from dozor.store.sealed import PersonalText, SealedText
from dozor.store.tables import UTCDateTime, _created, metadata

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    # Normalised, lower-case; sealed with the instance key (migration 0022) and found by
    # its digest (``keys.digest("email", email)``), which is unique.
    Column("email", SealedText, nullable=False),
    Column("email_digest", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("email_confirmed_at", UTCDateTime),
    Column("totp_secret", SealedText),  # set while enabling, in use once confirmed
    Column("totp_enabled_at", UTCDateTime),
    Column("failed_logins", SmallInteger, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("language", String(5)),  # the dashboard's, as chosen (migration 0010)
    _created(),
    sqlite_autoincrement=True,
)

memberships = Table(
    "memberships", metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(10), nullable=False),  # owner | admin | member | viewer
    # A sub-account: only the monitors carrying one of these tags (NULL: all of them).
    Column("monitor_tags", JSON),
    _created(),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in lists to tell tokens apart
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scope", String(8), nullable=False),  # read | write
    _created(),
    Column("last_used_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index("ix_api_tokens_org", "org_id"),
    sqlite_autoincrement=True,
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    _created(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", PersonalText),  # sealed (migration 0015), as all PersonalText
    Column("user_agent", PersonalText),
    Index("ix_sessions_user", "user_id"),
)

email_tokens = Table(
    "email_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(16), nullable=False),  # reset | invite
    _created(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Two-factor recovery codes: shown once when two-factor log-in is turned on, each usable
# once instead of a TOTP code. 80 random bits each, so SHA-256 is enough (as for tokens).
recovery_codes = Table(
    "recovery_codes", metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    _created(),
    Column("used_at", UTCDateTime),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE")),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL")),
    Column("action", String(40), nullable=False),
    Column("target", String(200)),
    Column("at", UTCDateTime, nullable=False),
    # Sealed with the organisation's data key; without an organisation, the instance key.
    Column("ip", PersonalText),
    Column("detail", JSON),
    Index("ix_audit_log_org_at", "org_id", "at"),
)

# Hits of the rate limits on PostgreSQL, where every node counts them here (``api.ratelimit``,
# migration 0023): one row per allowed hit, until it stops counting. The key (an IP
# address, an email address, a user's id) is stored as ``keys.digest("ratelimit:<name>",
# key)`` only; the retention job deletes expired rows. Empty on SQLite (counted in memory).
rate_limit_hits = Table(
    "rate_limit_hits", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),  # the limit's (RateLimit.name)
    Column("key_digest", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the hit's time plus the window
    Index("ix_rate_limit_hits_key", "name", "key_digest", "expires_at"),
)
