"""silent probes: the operator is told

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02

``probes.silent_since``: set (to the probe's last contact, or its creation) when the
server found it silent, and cleared when it is heard again, so the operator is told once
per silence. ``messages.org_id`` may be NULL: a notice to the installation's operator
belongs to no organisation. On SQLite that copies the messages table once (as 0015 did).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('probes', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('silent_since', sa.DateTime(timezone=True),
                                      nullable=True))
    # SQLite copies the table to change the column: keep AUTOINCREMENT.
    with op.batch_alter_table('messages', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.alter_column('org_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Operator notices have no organisation to belong to before this revision.
    op.execute('DELETE FROM messages WHERE org_id IS NULL')
    with op.batch_alter_table('messages', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.alter_column('org_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('probes', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('silent_since')
