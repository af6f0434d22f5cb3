"""sealed addresses

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-10

``contact_points.address`` and ``status_subscribers.email`` are sealed with their
organisation's data key (a subscriber's organisation is its page's), like the other
personal fields; SQL finds and compares them by a keyed digest beside them
(``address_digest``, ``email_digest``: hex HMAC-SHA256 of kind and address under the
installation's lookup key, made here and stored in ``instance_keys`` wrapped by the
instance key). The unique constraints and the (kind, address) index move to the
digests. Needs the instance key, as 0015 does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# table: (column, its digest, how a row's organisation is found, how its kind is)
TABLES: dict[str, tuple[str, str, str, str]] = {
    'contact_points': ('address', 'address_digest', 'org_id', 'kind'),
    'status_subscribers': ('email', 'email_digest',
                           '(SELECT org_id FROM status_pages p WHERE p.id = page_id)',
                           "'email'"),
}
WAS = {'contact_points': sa.String(length=500), 'status_subscribers': sa.String(length=320)}
UNIQUE = {'contact_points': ('uq_contact_points_org_id', ['org_id', 'kind']),
          'status_subscribers': ('uq_status_subscribers_page_id', ['page_id'])}
INDEX = 'ix_contact_points_kind_address'
BATCH = 1000
PERSONAL = 'p1:'


def digest(key: bytes, kind: str, address: str) -> str:
    """As ``privacy.keys.digest_with`` computed it when this was written."""
    return hmac.new(key, f'{kind}\0{address}'.encode(), hashlib.sha256).hexdigest()


def upgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()  # before anything changes: no key, no migration
    op.create_table('instance_keys',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('wrapped', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_instance_keys'))
    )
    bind = op.get_bind()
    lookup = secrets.token_bytes(32)
    bind.execute(sa.text("INSERT INTO instance_keys (name, wrapped, created_at) "
                         "VALUES ('lookup', :w, :c)"),
                 {'w': ring.encrypt(lookup).decode(), 'c': datetime.now(UTC)})
    data = _data_keys(ring)
    for table, (_column, digested, _org, _kind) in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(digested, sa.String(length=64), nullable=True))

    def sealed(org_id: int, kind: str, text: str) -> tuple[str, str | None]:
        plain = _opened(data, text)
        if not text.startswith(PERSONAL):
            text = f'{PERSONAL}{org_id}:{data(org_id).encrypt(text.encode()).decode()}'
        return text, digest(lookup, kind, plain)

    for table in TABLES:
        _rewrite(table, sealed)
    _reshape(sealed=True)


def downgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()
    data = _data_keys(ring)
    for table in TABLES:
        _rewrite(table, lambda _org, _kind, text: (_opened(data, text), None))
    _reshape(sealed=False)
    op.drop_table('instance_keys')


def _opened(data: Callable[[int], Fernet], text: str) -> str:
    if not text.startswith(PERSONAL):
        return text
    org_id, _, token = text.removeprefix(PERSONAL).partition(':')
    return data(int(org_id)).decrypt(token.encode()).decode()


def _data_keys(ring: Any) -> Callable[[int], Fernet]:
    """Each organisation's data key by id, made (and stored) for one that has none yet:
    a data key is made on first need, so an account may have none."""
    bind = op.get_bind()
    data = {org_id: Fernet(ring.decrypt(wrapped.encode())) for org_id, wrapped
            in bind.execute(sa.text('SELECT org_id, wrapped FROM data_keys')).all()}

    def key(org_id: int) -> Fernet:
        if org_id not in data:
            raw = Fernet.generate_key()
            bind.execute(sa.text('INSERT INTO data_keys (org_id, wrapped, created_at) '
                                 'VALUES (:o, :w, :c)'),
                         {'o': org_id, 'w': ring.encrypt(raw).decode(), 'c': datetime.now(UTC)})
            data[org_id] = Fernet(raw)
        return data[org_id]
    return key


def _reshape(sealed: bool) -> None:
    """The columns TEXT, digests required and the constraints on them (``sealed``), or
    back as before."""
    for table, (column, digested, _org, _kind) in TABLES.items():
        name, columns = UNIQUE[table]
        old, new = (WAS[table], sa.Text()) if sealed else (sa.Text(), WAS[table])
        # SQLite copies the table: keep AUTOINCREMENT where it was.
        with op.batch_alter_table(table, schema=None,
                                  table_kwargs={'sqlite_autoincrement': True}) as batch_op:
            batch_op.drop_constraint(name, type_='unique')
            if table == 'contact_points':
                batch_op.drop_index(INDEX if sealed else f'{INDEX}_digest')
            batch_op.alter_column(column, existing_type=old, type_=new,
                                  existing_nullable=False)
            if sealed:
                batch_op.alter_column(digested, existing_type=sa.String(length=64),
                                      nullable=False)
                batch_op.create_unique_constraint(name, [*columns, digested])
                if table == 'contact_points':
                    batch_op.create_index(f'{INDEX}_digest', ['kind', digested], unique=False)
            else:
                batch_op.drop_column(digested)
                batch_op.create_unique_constraint(name, [*columns, column])
                if table == 'contact_points':
                    batch_op.create_index(INDEX, ['kind', column], unique=False)


def _rewrite(table: str, change: Callable[[int, str, str], tuple[str, str | None]]) -> None:
    """Set every row's value and digest (unless None) to what ``change`` makes of its
    organisation, kind and value, a batch at a time by id."""
    column, digested, org, kind = TABLES[table]
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(sa.text(f'SELECT id, {org} AS org, {kind} AS kind, {column} AS value '
                                    f'FROM {table} WHERE id > :after ORDER BY id LIMIT {BATCH}'),
                            {'after': after}).all()
        for row in rows:
            value, found = change(row.org, row.kind, row.value)
            values = {column: value} if found is None else {column: value, digested: found}
            sets = ', '.join(f'{c} = :{c}' for c in values)
            bind.execute(sa.text(f'UPDATE {table} SET {sets} WHERE id = :key_'),
                         {**values, 'key_': row.id})
        if len(rows) < BATCH:
            return
        after = rows[-1].id
