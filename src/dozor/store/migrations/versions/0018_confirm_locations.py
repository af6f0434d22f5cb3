"""confirmation across locations

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01

``monitors.confirm_locations``: how many of a monitor's locations must see it down to
confirm an outage (a number, "all", or NULL for a majority; ``core.quorum``).
``monitor_state.regional``: the locations that see it down while too few do to confirm
it (a regional problem), NULL when there is none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite adds the columns in place; were it to copy the table, AUTOINCREMENT stays.
    with op.batch_alter_table('monitors', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('confirm_locations', sa.JSON(), nullable=True))
    with op.batch_alter_table('monitor_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('regional', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitor_state', schema=None) as batch_op:
        batch_op.drop_column('regional')
    with op.batch_alter_table('monitors', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('confirm_locations')
