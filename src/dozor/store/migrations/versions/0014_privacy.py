"""erasure, restriction and breach notices

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

Erasure requests (kept after what they erased, with ids and dates only), breaches and
the notices sent about them, and ``organizations.restricted_at``: processing frozen by
the account or while its erasure runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('breaches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_breaches')),
    sqlite_autoincrement=True
    )
    op.create_table('erasure_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_by', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_requests')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.create_index('ix_erasure_requests_open', ['done_at', 'due_by'], unique=False)
    op.create_table('breach_notices',
    sa.Column('breach_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('within_deadline', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['breach_id'], ['breaches.id'], name=op.f('fk_breach_notices_breach_id_breaches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_breach_notices_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('breach_id', 'org_id', name=op.f('pk_breach_notices'))
    )
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('restricted_at')
    op.drop_table('breach_notices')
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_erasure_requests_open')
    op.drop_table('erasure_requests')
    op.drop_table('breaches')
