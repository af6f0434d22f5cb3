"""sealed user emails

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12

``users.email`` is sealed with the instance key (a user belongs to no one organisation,
so not with a data key; as ``users.totp_secret``), and found by a keyed digest beside it,
``users.email_digest`` (hex HMAC-SHA256 of ``email`` and the address under the lookup
key migration 0016 made, as ``status_subscribers.email_digest``). The unique constraint
moves from the address to the digest. Needs the instance key, as 0015 and 0016 do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BATCH = 1000
SECRET = 's1:'
KIND = 'email'


def digest(key: bytes, address: str) -> str:
    """As ``privacy.keys.digest_with(key, "email", address)`` computed it when this was
    written."""
    return hmac.new(key, f'{KIND}\0{address}'.encode(), hashlib.sha256).hexdigest()


def upgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()  # before anything changes: no key, no migration
    wrapped = op.get_bind().execute(sa.text(
        "SELECT wrapped FROM instance_keys WHERE name = 'lookup'")).scalar_one()
    lookup = ring.decrypt(wrapped.encode())
    # TEXT first: a sealed address is longer than the 320 characters it may have had.
    with _users() as batch_op:
        batch_op.drop_constraint(op.f('uq_users_email'), type_='unique')
        batch_op.alter_column('email', existing_type=sa.String(length=320), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('email_digest', sa.String(length=64), nullable=True))

    def sealed(text: str) -> tuple[str, str | None]:
        if text.startswith(SECRET):
            return text, digest(lookup, ring.open(text))
        return ring.seal(text), digest(lookup, text)

    _rewrite(sealed)
    with _users() as batch_op:
        batch_op.alter_column('email_digest', existing_type=sa.String(length=64),
                              nullable=False)
        batch_op.create_unique_constraint(op.f('uq_users_email_digest'), ['email_digest'])


def downgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()
    _rewrite(lambda text: (ring.open(text) if text.startswith(SECRET) else text, None))
    with _users() as batch_op:
        batch_op.drop_constraint(op.f('uq_users_email_digest'), type_='unique')
        batch_op.drop_column('email_digest')
        batch_op.alter_column('email', existing_type=sa.Text(), type_=sa.String(length=320),
                              existing_nullable=False)
        batch_op.create_unique_constraint(op.f('uq_users_email'), ['email'])


def _users() -> Any:
    """A batch of changes to ``users`` (SQLite copies the table: keep AUTOINCREMENT)."""
    return op.batch_alter_table('users', schema=None,
                                table_kwargs={'sqlite_autoincrement': True})


def _rewrite(change: Callable[[str], tuple[str, str | None]]) -> None:
    """Set every user's address and digest (unless None) to what ``change`` makes of the
    address, a batch at a time by id."""
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(sa.text(f'SELECT id, email FROM users WHERE id > :after '
                                    f'ORDER BY id LIMIT {BATCH}'), {'after': after}).all()
        for row in rows:
            value, found = change(row.email)
            values = {'email': value} if found is None else {'email': value,
                                                              'email_digest': found}
            sets = ', '.join(f'{c} = :{c}' for c in values)
            bind.execute(sa.text(f'UPDATE users SET {sets} WHERE id = :key_'),
                         {**values, 'key_': row.id})
        if len(rows) < BATCH:
            return
        after = rows[-1].id
