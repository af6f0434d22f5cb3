"""several server nodes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01

``server_nodes``: each running ``dozor serve`` on a PostgreSQL database, with its
heartbeat. ``monitor_leases``: which node checks a monitor and writes its state; a lease
goes with its node's row (``engine.cluster``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'server_nodes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('location', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('lease_ms', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'monitor_leases',
        sa.Column('monitor_id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['node_id'], ['server_nodes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('monitor_id'),
    )
    op.create_index('ix_monitor_leases_node_id', 'monitor_leases', ['node_id'])


def downgrade() -> None:
    op.drop_index('ix_monitor_leases_node_id', table_name='monitor_leases')
    op.drop_table('monitor_leases')
    op.drop_table('server_nodes')
