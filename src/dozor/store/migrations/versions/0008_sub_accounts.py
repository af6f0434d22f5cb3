"""sub-accounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A membership may be limited to the monitors carrying some tags (a sub-account, as hosted
monitoring services offer): ``memberships.monitor_tags``, NULL for the whole organisation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monitor_tags', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('monitor_tags')
