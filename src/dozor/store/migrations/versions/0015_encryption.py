"""encryption at rest

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08

``data_keys``: each organisation's data key, wrapped by the instance key. Secrets
(channel configs, webhook secrets, TOTP keys) are sealed with the instance key
(``s1:...``), personal fields with their organisation's data key (``p1:<org>:...``); the
columns become TEXT (a sealed value is longer than the text it holds) and the rows stored
in the clear are sealed here. Needs the instance key: ``dozor migrate`` loads it (the
setting, or the key file it creates).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

SECRETS: dict[str, tuple[str, tuple[str, ...]]] = {  # table: (primary key, columns sealed with the instance key)
    'users': ('id', ('totp_secret',)),
    'contact_points': ('id', ('secret',)),
    'notify_channels': ('id', ('config',)),
}
PERSONAL: dict[str, tuple[str, str, tuple[str, ...]]] = {  # table: (primary key, how a row's organisation is found, columns)
    'sessions': ('token_hash', 'org_id', ('ip', 'user_agent')),
    'audit_log': ('id', 'org_id', ('ip',)),
    'consents': ('id', 'org_id', ('address', 'source', 'user_agent')),
    'messages': ('id', 'org_id', ('to_address',)),
    'status_subscribers': ('id', '(SELECT org_id FROM status_pages p WHERE p.id = page_id)',
                           ('confirmed_ip', 'confirmed_user_agent')),
}
WAS: dict[tuple[str, str], sa.types.TypeEngine[Any]] = {  # the types before
    ('users', 'totp_secret'): sa.String(length=64),
    ('contact_points', 'secret'): sa.Text(),
    ('notify_channels', 'config'): sa.JSON(),
    ('sessions', 'ip'): sa.String(length=64),
    ('sessions', 'user_agent'): sa.String(length=300),
    ('audit_log', 'ip'): sa.String(length=64),
    ('consents', 'address'): sa.String(length=500),
    ('consents', 'source'): sa.String(length=200),
    ('consents', 'user_agent'): sa.String(length=300),
    ('messages', 'to_address'): sa.String(length=320),
    ('status_subscribers', 'confirmed_ip'): sa.String(length=64),
    ('status_subscribers', 'confirmed_user_agent'): sa.String(length=400),
}
BATCH = 1000
AUTOINCREMENT = {'users', 'contact_points', 'messages', 'status_subscribers'}


def upgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()  # before anything changes: no key, no migration
    op.create_table('data_keys',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('wrapped', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_data_keys_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_data_keys'))
    )
    _retype(sealed=True)
    bind = op.get_bind()
    data: dict[int, Fernet] = {}
    now = datetime.now(UTC)
    for (org_id,) in bind.execute(sa.text('SELECT id FROM organizations')).all():
        raw = Fernet.generate_key()
        bind.execute(sa.text('INSERT INTO data_keys (org_id, wrapped, created_at) '
                             'VALUES (:o, :w, :c)'),
                     {'o': org_id, 'w': ring.encrypt(raw).decode(), 'c': now})
        data[org_id] = Fernet(raw)

    def personal(org_id: int | None, text: str) -> str:
        if org_id is None:
            return ring.seal(text)
        return f'{keys.PERSONAL}{org_id}:{data[org_id].encrypt(text.encode()).decode()}'

    for table, (key, columns) in SECRETS.items():
        _rewrite(table, key, 'NULL', columns,
                 lambda _org, value: value if value.startswith(keys.SECRET) else ring.seal(value))
    for table, (key, org, columns) in PERSONAL.items():
        _rewrite(table, key, org, columns,
                 lambda o, value: value if value.startswith(keys.PERSONAL) else personal(o, value))


def downgrade() -> None:
    from dozor.privacy import keys

    ring = keys.current()
    bind = op.get_bind()
    data = {org_id: Fernet(ring.decrypt(wrapped.encode())) for org_id, wrapped
            in bind.execute(sa.text('SELECT org_id, wrapped FROM data_keys')).all()}

    def opened(_org: int | None, value: str) -> str:
        if value.startswith(keys.SECRET):
            return ring.open(value)
        if value.startswith(keys.PERSONAL):
            org, _, token = value.removeprefix(keys.PERSONAL).partition(':')
            return data[int(org)].decrypt(token.encode()).decode()
        return value

    for table, (key, columns) in SECRETS.items():
        _rewrite(table, key, 'NULL', columns, opened)
    for table, (key, _org, columns) in PERSONAL.items():
        _rewrite(table, key, 'NULL', columns, opened)
    _retype(sealed=False)
    op.drop_table('data_keys')


def _retype(sealed: bool) -> None:
    """Every sealed column to TEXT (``sealed``), or back to its type before."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table in dict.fromkeys(table for table, _ in WAS):
        # SQLite copies the table: keep AUTOINCREMENT where it was.
        autoincrement = {'sqlite_autoincrement': True} if table in AUTOINCREMENT else {}
        with op.batch_alter_table(table, schema=None, table_kwargs=autoincrement) as batch_op:
            for (name, column), was in WAS.items():
                if name != table:
                    continue
                text: sa.types.TypeEngine[Any] = sa.Text()
                old, new = (was, text) if sealed else (text, was)
                cast = f'{column}::{"text" if sealed else "json"}' if postgres and isinstance(
                    was, sa.JSON) else None
                batch_op.alter_column(column, existing_type=old, type_=new,
                                      postgresql_using=cast)


def _rewrite(table: str, key: str, org: str, columns: tuple[str, ...],
             change: Callable[[int | None, str], str]) -> None:
    """Pass every row of ``table`` through ``change``, a batch at a time in key order."""
    bind = op.get_bind()
    listed = ', '.join(columns)
    after: object = None
    while True:
        where = '' if after is None else f'WHERE {key} > :after '
        rows = bind.execute(sa.text(f'SELECT {key}, {org} AS org, {listed} FROM {table} '
                                    f'{where}ORDER BY {key} LIMIT {BATCH}'),
                            {'after': after}).all()
        for row in rows:
            values = {c: _text(getattr(row, c)) for c in columns}
            changed = {c: change(row.org, v) for c, v in values.items() if v is not None}
            if any(changed[c] != values[c] for c in changed):
                sets = ', '.join(f'{c} = :{c}' for c in changed)
                bind.execute(sa.text(f'UPDATE {table} SET {sets} WHERE {key} = :key_'),
                             {**changed, 'key_': getattr(row, key)})
        if len(rows) < BATCH:
            return
        after = getattr(rows[-1], key)


def _text(value: object) -> str | None:
    """A column's stored value as text (a JSON column of PostgreSQL gives a document)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
