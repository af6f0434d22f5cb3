"""certificate and domain expiry

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``monitor_state.expires_at``: when the certificate (http over TLS, tls) or the domain
registration (domain) the latest check saw runs out, for the dashboard.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('monitor_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitor_state', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
