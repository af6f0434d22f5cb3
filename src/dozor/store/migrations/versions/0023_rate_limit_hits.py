"""rate limit hits shared by the nodes

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-14

``rate_limit_hits``: on PostgreSQL every node counts the rate limits' hits here, so
several nodes share each limit (``api.ratelimit``): one row per allowed hit, with the
limit's name, a keyed digest of the key (never the address or IP) and when the hit stops
counting. The retention job deletes expired rows. SQLite keeps counting in memory (one
server process), so the table stays empty there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_limit_hits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('key_digest', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rate_limit_hits_key', 'rate_limit_hits',
                    ['name', 'key_digest', 'expires_at'])


def downgrade() -> None:
    op.drop_index('ix_rate_limit_hits_key', table_name='rate_limit_hits')
    op.drop_table('rate_limit_hits')
