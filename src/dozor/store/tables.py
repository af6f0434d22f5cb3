"""The database schema, as SQLAlchemy Core tables. Alembic migrations must match it
(a test compares them).

Every object belongs to an organisation; every result carries the location that
measured it. Times are UTC: ``UTCDateTime`` columns for ordinary rows, and integer
epoch milliseconds in the two hot tables (``results`` and the rollups), where eight
bytes a timestamp and a WITHOUT ROWID primary key keep a stored result near 20 bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)


def _created() -> Column[datetime]:
    return Column("created_at", UTCDateTime, nullable=False, default=lambda: datetime.now(UTC))


organizations = Table(
    "organizations", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(20), nullable=False, default="free"),
    _created(),
    # Alert delivery (migration 0002): SMS credits left, and why messaging is suspended.
    Column("sms_credits", Integer, nullable=False, default=50, server_default="50"),
    Column("messaging_suspended_at", UTCDateTime),
    Column("messaging_suspended_reason", Text),
    Column("trial_ends_at", UTCDateTime),  # accounts (migration 0003)
    Column("paid_until", UTCDateTime),  # end of the paid period (migration 0009)
    # Processing restricted by the account (checks and messages stop, data kept), or
    # frozen while its erasure runs (migration 0014).
    Column("restricted_at", UTCDateTime),
)

# Each organisation's data key (migration 0015), wrapped by the instance key
# (``privacy.keys``): its personal fields are sealed with it, and erasure deletes it.
data_keys = Table(
    "data_keys", metadata,
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("wrapped", Text, nullable=False),
    _created(),
)

# Keys of the whole installation (migration 0016), wrapped by the instance key like the
# data keys: ``lookup`` keys the digests that let SQL find and compare sealed addresses
# (``privacy.keys.digest``). Rotation re-wraps them; the keys themselves never change.
instance_keys = Table(
    "instance_keys", metadata,
    Column("name", String(32), primary_key=True),
    Column("wrapped", Text, nullable=False),
    _created(),
)

locations = Table(
    "locations", metadata,
    Column("id", Integer, primary_key=True),  # INTEGER: SQLite only autoincrements that
    Column("name", String(64), nullable=False, unique=True),
    _created(),
)

# Remote probes (migration 0017): agents that check the monitors assigned to their
# location and send the results (``api.probes``). The token is kept as SHA-256, as API
# tokens are; the rest is what the probe last reported, for ``dozor probes list``.
probes = Table(
    "probes", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("location_id", ForeignKey("locations.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown in lists to tell tokens apart
    _created(),
    Column("revoked_at", UTCDateTime),
    Column("last_seen_at", UTCDateTime),
    Column("last_version", String(64)),
    Column("last_result_at", UTCDateTime),  # the newest result it delivered was taken then
    Column("dropped", BigInteger, nullable=False, default=0, server_default="0"),
    Column("last_lag_ms", BigInteger),  # its last request's time minus that newest result's
    # Set when the probe was found silent (migration 0020): its last contact (or its
    # creation, if it never made one). Set once per silence, by a compare-and-swap, so
    # the operator is told once (``notify.probe_watch``); cleared when it is heard again.
    Column("silent_since", UTCDateTime),
    sqlite_autoincrement=True,
)

# Server nodes sharing one PostgreSQL database (migration 0019, ``engine.cluster``): each
# node's row is its heartbeat, and a monitor's lease names the node that checks it and
# writes its state. A lease is as alive as its node's heartbeat; a node judged dead is
# deleted, and its leases with it, for the live nodes to take.
server_nodes = Table(
    "server_nodes", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),  # host and process, for people reading
    Column("location", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("lease_ms", Integer, nullable=False),  # DOZOR_NODE_LEASE: nodes must agree
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

monitors = Table(
    "monitors", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("config", JSON, nullable=False),
    Column("interval_ms", Integer, nullable=False),
    Column("retry_interval_ms", Integer, nullable=False),
    Column("timeout_ms", Integer, nullable=False),
    Column("confirm_after", SmallInteger, nullable=False),
    Column("recover_after", SmallInteger, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("managed_by", String(20)),  # "yaml" for monitors `dozor apply` owns
    Column("push_token", String(64), unique=True),  # heartbeat monitors only
    Column("revision", BigInteger, nullable=False),
    _created(),
    Column("updated_at", UTCDateTime, nullable=False),
    # The location names that check it (migration 0017); NULL: the server's own only.
    Column("locations", JSON(none_as_null=True)),
    # How many locations confirm an outage: a number, "all", or NULL for a majority
    # (migration 0018, core.quorum).
    Column("confirm_locations", JSON(none_as_null=True)),
    UniqueConstraint("org_id", "name"),
    # Never reuse an id: results, incidents and in-memory state are keyed by it.
    sqlite_autoincrement=True,
)

monitor_leases = Table(
    "monitor_leases", metadata,
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", ForeignKey("server_nodes.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("taken_at", UTCDateTime, nullable=False),
)

monitor_state = Table(
    "monitor_state", metadata,
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime),
    Column("failures", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("history", BigInteger, nullable=False, default=0),
    Column("history_len", SmallInteger, nullable=False, default=0),
    Column("flapping", Boolean, nullable=False, default=False),
    Column("incident_id", ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("last_checked_at", UTCDateTime),
    Column("last_latency_ms", Float),
    Column("last_error", SmallInteger),
    Column("last_message", Text),
    Column("last_ping_at", UTCDateTime),
    Column("last_start_at", UTCDateTime),
    Column("last_ping_kind", String(10)),
    # When the certificate or domain the latest check saw runs out (migration 0011).
    Column("expires_at", UTCDateTime),
    # The locations that see it down while too few do to confirm an outage (a regional
    # problem, migration 0018); NULL when there is none.
    Column("regional", JSON(none_as_null=True)),
)

results = Table(
    "results", metadata,
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
    Column("at", BigInteger, primary_key=True),  # epoch milliseconds, UTC
    Column("location_id", SmallInteger, primary_key=True),
    Column("status", SmallInteger, nullable=False),  # core.types.ResultStatus
    Column("latency_ms", Integer),
    Column("error", SmallInteger),  # core.types.ErrorCode
    Column("detail", Text),  # JSON, only on failures and state changes
    Column("phases", BigInteger),  # core.phases: timing phases packed (migration 0013)
    sqlite_with_rowid=False,
)


def _rollup_table(name: str) -> Table:
    return Table(
        name, metadata,
        Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
        Column("location_id", SmallInteger, primary_key=True),
        Column("bucket", BigInteger, primary_key=True),  # epoch seconds of the period start
        Column("checks", Integer, nullable=False),
        Column("up", Integer, nullable=False),
        Column("timed", Integer, nullable=False),  # checks that measured a latency
        Column("latency_sum", Float, nullable=False),
        Column("latency_min", Float),
        Column("latency_max", Float),
        Column("p50", Float),
        Column("p95", Float),
        Column("p99", Float),
        Column("histogram", Text, nullable=False),  # engine.rollups.Histogram, mergeable
        sqlite_with_rowid=False,
    )


rollups_hourly = _rollup_table("rollups_hourly")
rollups_daily = _rollup_table("rollups_daily")

# Hours rolled up before some of their results were stored (a probe delivering its
# buffer late): the rollup job makes them again (store.late_hours, migration 0021).
late_hours = Table(
    "late_hours", metadata,
    Column("bucket", BigInteger, primary_key=True),  # epoch seconds of the hour's start
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
    Column("location_id", SmallInteger, primary_key=True),
    sqlite_with_rowid=False,
)

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("cause", Text, nullable=False),
    Column("first_error", SmallInteger),
    Column("location_id", SmallInteger),
    Column("resolution", String(20)),  # recovered | paused | deleted
    Index("ix_incidents_monitor_opened", "monitor_id", "opened_at"),
    Index("ix_incidents_org_opened", "org_id", "opened_at"),
    sqlite_autoincrement=True,
)

# The durable feed of state changes, written in the same transaction as the results
# that caused them; the alert router reads it and writes outbox messages beside it.
state_changes = Table(
    "state_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("previous", String(16), nullable=False),
    Column("current", String(16), nullable=False),
    Column("flapping", Boolean, nullable=False),
    Column("incident_id", ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("reason", Text),
    Index("ix_state_changes_monitor_at", "monitor_id", "at"),
)

maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("starts_at", UTCDateTime),  # one-off windows
    Column("ends_at", UTCDateTime),
    Column("cron", String(120)),  # recurring windows: start times ...
    Column("duration_ms", BigInteger),  # ... each lasting this long
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("all_monitors", Boolean, nullable=False, default=False),
    Column("monitor_names", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("managed_by", String(20)),
    Column("revision", BigInteger, nullable=False),
    _created(),
    UniqueConstraint("org_id", "name"),
)

# Small key/value facts about the installation, e.g. the configuration revision that
# running servers poll to pick up changes made by other processes.
meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


# The alert-delivery tables share this metadata (imported last: they use the names above).
from dozor.store import (  # noqa: E402, F401
    account_tables,
    incident_tables,
    notify_tables,
    privacy_tables,
    status_tables,
)
