"""paid period

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

``organizations.paid_until``: the end of a paid period, set by the operator (``dozor orgs
plan ORG paid --until DATE``). After it, and after a trial's end, the free plan's limits
apply; the privacy work keeps data by these dates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('paid_until')
