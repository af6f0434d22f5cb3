"""hours to roll up again

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

``late_hours``: (hour, monitor, location) whose hourly rollup was made before some of
its results were stored (a probe delivering its buffer late). The result's writer adds
the row in the transaction that stores the result; the rollup job makes the hour and its
day again from raw results and deletes the row (``store.late_hours``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('late_hours',
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'],
                            name=op.f('fk_late_hours_monitor_id_monitors'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'monitor_id', 'location_id', name=op.f('pk_late_hours')),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    op.drop_table('late_hours')
