"""status subscribers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Visitors subscribed to a status page by email (``status_subscribers``), and the
subscriber a message goes to (``messages.subscriber_id``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('status_subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('confirm_hash', sa.String(length=64), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_ip', sa.String(length=64), nullable=True),
    sa.Column('confirmed_user_agent', sa.String(length=400), nullable=True),
    sa.Column('unsubscribe_token', sa.String(length=64), nullable=False),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['status_pages.id'], name=op.f('fk_status_subscribers_page_id_status_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_subscribers')),
    sa.UniqueConstraint('page_id', 'email', name=op.f('uq_status_subscribers_page_id')),
    sa.UniqueConstraint('unsubscribe_token', name=op.f('uq_status_subscribers_unsubscribe_token')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('status_subscribers', schema=None) as batch_op:
        batch_op.create_index('ix_status_subscribers_confirm', ['confirm_hash'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscriber_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('subscriber_id')
    with op.batch_alter_table('status_subscribers', schema=None) as batch_op:
        batch_op.drop_index('ix_status_subscribers_confirm')
    op.drop_table('status_subscribers')
