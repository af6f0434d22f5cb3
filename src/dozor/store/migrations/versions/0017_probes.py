"""remote probes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01

``probes``: the remote agents that check monitors from their location, each with its
token (SHA-256, as API tokens) and what it last reported (contact, version, lag, results
its buffer dropped). ``monitors.locations``: the location names that check a monitor
(NULL: the server's own location only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('probes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_version', sa.String(length=64), nullable=True),
    sa.Column('last_result_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dropped', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('last_lag_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_probes_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_probes')),
    sa.UniqueConstraint('name', name=op.f('uq_probes_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_probes_token_hash')),
    sqlite_autoincrement=True
    )
    # SQLite adds the column in place; were it to copy the table, AUTOINCREMENT stays.
    with op.batch_alter_table('monitors', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('locations', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitors', schema=None,
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('locations')
    op.drop_table('probes')
