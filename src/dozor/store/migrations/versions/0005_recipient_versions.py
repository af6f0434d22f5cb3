"""recipient versions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Contacts, contact points and alert policies carry a version, as monitors do, so two
editors of the API never silently overwrite each other (If-Match).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ('contacts', 'contact_points', 'alert_policies')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                          server_default='1'))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('version')
