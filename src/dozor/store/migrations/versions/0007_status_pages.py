"""status pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Public status pages: the pages, their groups of monitors, and their notes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('status_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('custom_domain', sa.String(length=253), nullable=True),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_status_pages_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_pages')),
    sa.UniqueConstraint('custom_domain', name=op.f('uq_status_pages_custom_domain')),
    sa.UniqueConstraint('slug', name=op.f('uq_status_pages_slug')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('status_pages', schema=None) as batch_op:
        batch_op.create_index('ix_status_pages_org', ['org_id'], unique=False)

    op.create_table('status_page_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['status_pages.id'], name=op.f('fk_status_page_groups_page_id_status_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_page_groups')),
    sa.UniqueConstraint('page_id', 'position', name=op.f('uq_status_page_groups_page_id'))
    )
    op.create_table('status_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_status_notes_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_status_notes_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['page_id'], ['status_pages.id'], name=op.f('fk_status_notes_page_id_status_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_notes')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('status_notes', schema=None) as batch_op:
        batch_op.create_index('ix_status_notes_page_created', ['page_id', 'created_at'], unique=False)

    op.create_table('status_page_monitors',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['status_page_groups.id'], name=op.f('fk_status_page_monitors_group_id_status_page_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_status_page_monitors_monitor_id_monitors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['page_id'], ['status_pages.id'], name=op.f('fk_status_page_monitors_page_id_status_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'position', name=op.f('pk_status_page_monitors')),
    sa.UniqueConstraint('page_id', 'monitor_id', name=op.f('uq_status_page_monitors_page_id'))
    )
    with op.batch_alter_table('status_page_monitors', schema=None) as batch_op:
        batch_op.create_index('ix_status_page_monitors_monitor', ['monitor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('status_page_monitors', schema=None) as batch_op:
        batch_op.drop_index('ix_status_page_monitors_monitor')

    op.drop_table('status_page_monitors')
    with op.batch_alter_table('status_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_status_notes_page_created')

    op.drop_table('status_notes')
    op.drop_table('status_page_groups')
    with op.batch_alter_table('status_pages', schema=None) as batch_op:
        batch_op.drop_index('ix_status_pages_org')

    op.drop_table('status_pages')
