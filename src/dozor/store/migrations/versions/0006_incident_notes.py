"""incident notes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Acknowledgements and comments of incidents; an index for reading an organisation's
delivery log newest first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_acknowledgements',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_acknowledgements_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_incident_acknowledgements_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_incident_acknowledgements_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_incident_acknowledgements'))
    )
    op.create_table('incident_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_comments_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_incident_comments_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_incident_comments_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_comments')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.create_index('ix_incident_comments_incident', ['incident_id', 'id'], unique=False)
        batch_op.create_index('ix_incident_comments_user', ['user_id'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_org', ['org_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_org')
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_comments_user')
        batch_op.drop_index('ix_incident_comments_incident')
    op.drop_table('incident_comments')
    op.drop_table('incident_acknowledgements')
