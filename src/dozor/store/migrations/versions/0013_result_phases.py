"""timing phases of every result

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

``results.phases``: DNS, connect, TLS and first-byte milliseconds packed into one integer
(``core.phases``), so the latency chart shows phases for every check, not only for those
that kept details.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phases', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_column('phases')
