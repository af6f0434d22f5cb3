"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21

The first schema, and the default organisation that owns everything until accounts exist.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('locations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
    sa.UniqueConstraint('name', name=op.f('uq_locations_name'))
    )
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )
    op.create_table('organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('plan', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('slug', name=op.f('uq_organizations_slug'))
    )
    op.create_table('maintenance_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cron', sa.String(length=120), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('all_monitors', sa.Boolean(), nullable=False),
    sa.Column('monitor_names', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('managed_by', sa.String(length=20), nullable=True),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_maintenance_windows_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows')),
    sa.UniqueConstraint('org_id', 'name', name=op.f('uq_maintenance_windows_org_id'))
    )
    op.create_table('monitors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('interval_ms', sa.Integer(), nullable=False),
    sa.Column('retry_interval_ms', sa.Integer(), nullable=False),
    sa.Column('timeout_ms', sa.Integer(), nullable=False),
    sa.Column('confirm_after', sa.SmallInteger(), nullable=False),
    sa.Column('recover_after', sa.SmallInteger(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('managed_by', sa.String(length=20), nullable=True),
    sa.Column('push_token', sa.String(length=64), nullable=True),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_monitors_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitors')),
    sa.UniqueConstraint('org_id', 'name', name=op.f('uq_monitors_org_id')),
    sa.UniqueConstraint('push_token', name=op.f('uq_monitors_push_token')),
    sqlite_autoincrement=True
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('first_error', sa.SmallInteger(), nullable=True),
    sa.Column('location_id', sa.SmallInteger(), nullable=True),
    sa.Column('resolution', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_incidents_monitor_id_monitors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_incidents_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_monitor_opened', ['monitor_id', 'opened_at'], unique=False)
        batch_op.create_index('ix_incidents_org_opened', ['org_id', 'opened_at'], unique=False)

    op.create_table('results',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('location_id', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error', sa.SmallInteger(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_results_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', 'at', 'location_id', name=op.f('pk_results')),
    sqlite_with_rowid=False
    )
    op.create_table('rollups_daily',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.SmallInteger(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.Column('up', sa.Integer(), nullable=False),
    sa.Column('timed', sa.Integer(), nullable=False),
    sa.Column('latency_sum', sa.Float(), nullable=False),
    sa.Column('latency_min', sa.Float(), nullable=True),
    sa.Column('latency_max', sa.Float(), nullable=True),
    sa.Column('p50', sa.Float(), nullable=True),
    sa.Column('p95', sa.Float(), nullable=True),
    sa.Column('p99', sa.Float(), nullable=True),
    sa.Column('histogram', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_rollups_daily_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', 'location_id', 'bucket', name=op.f('pk_rollups_daily')),
    sqlite_with_rowid=False
    )
    op.create_table('rollups_hourly',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.SmallInteger(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.Column('up', sa.Integer(), nullable=False),
    sa.Column('timed', sa.Integer(), nullable=False),
    sa.Column('latency_sum', sa.Float(), nullable=False),
    sa.Column('latency_min', sa.Float(), nullable=True),
    sa.Column('latency_max', sa.Float(), nullable=True),
    sa.Column('p50', sa.Float(), nullable=True),
    sa.Column('p95', sa.Float(), nullable=True),
    sa.Column('p99', sa.Float(), nullable=True),
    sa.Column('histogram', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_rollups_hourly_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', 'location_id', 'bucket', name=op.f('pk_rollups_hourly')),
    sqlite_with_rowid=False
    )
    op.create_table('monitor_state',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('successes', sa.Integer(), nullable=False),
    sa.Column('history', sa.BigInteger(), nullable=False),
    sa.Column('history_len', sa.SmallInteger(), nullable=False),
    sa.Column('flapping', sa.Boolean(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_latency_ms', sa.Float(), nullable=True),
    sa.Column('last_error', sa.SmallInteger(), nullable=True),
    sa.Column('last_message', sa.Text(), nullable=True),
    sa.Column('last_ping_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_ping_kind', sa.String(length=10), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_monitor_state_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_monitor_state_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_monitor_state'))
    )
    op.create_table('state_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=False),
    sa.Column('current', sa.String(length=16), nullable=False),
    sa.Column('flapping', sa.Boolean(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_state_changes_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_state_changes_monitor_id_monitors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_state_changes_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_state_changes'))
    )
    with op.batch_alter_table('state_changes', schema=None) as batch_op:
        batch_op.create_index('ix_state_changes_monitor_at', ['monitor_id', 'at'], unique=False)



    organizations = sa.table(
        "organizations", sa.column("id", sa.Integer), sa.column("slug", sa.String),
        sa.column("name", sa.String), sa.column("plan", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(organizations, [{
        "id": 1, "slug": "default", "name": "Default organisation", "plan": "free",
        "created_at": datetime.now(UTC),
    }])
    meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(meta, [{"key": "config_revision", "value": 0}])


def downgrade() -> None:
    with op.batch_alter_table('state_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_state_changes_monitor_at')

    op.drop_table('state_changes')
    op.drop_table('monitor_state')
    op.drop_table('rollups_hourly')
    op.drop_table('rollups_daily')
    op.drop_table('results')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_org_opened')
        batch_op.drop_index('ix_incidents_monitor_opened')

    op.drop_table('incidents')
    op.drop_table('monitors')
    op.drop_table('maintenance_windows')
    op.drop_table('organizations')
    op.drop_table('meta')
    op.drop_table('locations')
