"""account mail and recovery codes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Messages may go to an address instead of a contact point (account emails: password reset,
invitations); two-factor recovery codes, stored hashed. A user whose address was already
confirmed as an email point is confirmed (from now on confirming the point does that).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('to_address', sa.String(length=320), nullable=True))
    op.create_table('recovery_codes',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'code_hash', name=op.f('pk_recovery_codes'))
    )
    op.execute("UPDATE users SET email_confirmed_at = ("
               "SELECT min(p.confirmed_at) FROM contact_points p WHERE p.kind = 'email' "
               "AND p.address = users.email AND p.confirmed_at IS NOT NULL) "
               "WHERE email_confirmed_at IS NULL")


def downgrade() -> None:
    op.drop_table('recovery_codes')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('to_address')
