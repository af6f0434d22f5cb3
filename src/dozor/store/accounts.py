"""Queries about users and their memberships, shared by the API and alert delivery.

An invited person has a user row before they choose a password: its ``password_hash`` is
:data:`UNUSABLE_PASSWORD`, which no password matches (argon2 rejects it as no hash).

A user's email is sealed with the instance key (users belong to no one organisation) and
found by its keyed digest, as subscribers' emails are: a writer stores both
(:func:`email_fields`), a reader compares digests (:func:`user_by_email`)::

    insert(a.users).values(**await email_fields(conn, "ala@example.com"), name="Ala", ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.privacy import keys
from dozor.store import account_tables as a

UNUSABLE_PASSWORD = "!"


async def user(connection: AsyncConnection, user_id: int) -> Any:
    return (await connection.execute(select(a.users).where(a.users.c.id == user_id))).one()


async def email_digest(connection: AsyncConnection, email: str) -> str:
    """The digest a user with this (normalised) address is found by."""
    return await keys.digest_of(connection, "email", email)


async def email_fields(connection: AsyncConnection, email: str) -> dict[str, str]:
    """A user's (normalised) address as a writer stores it: sealed (by the column's type),
    with its digest."""
    return {"email": email, "email_digest": await email_digest(connection, email)}


async def user_by_email(connection: AsyncConnection, email: str) -> Any:
    """The user with this (normalised) address, or None."""
    found = await email_digest(connection, email)
    return (await connection.execute(
        select(a.users).where(a.users.c.email_digest == found))).first()


async def membership(connection: AsyncConnection, user_id: int,
                     org_id: int | None = None) -> Any:
    """The user's membership in ``org_id`` (or their first one), or None."""
    m = a.memberships.c
    query = select(a.memberships).where(m.user_id == user_id)
    if org_id is not None:
        query = query.where(m.org_id == org_id)
    return (await connection.execute(query.order_by(m.created_at, m.org_id))).first()


async def home_org(connection: AsyncConnection, user_id: int) -> int | None:
    """The organisation a user's account events are recorded in: their first one."""
    row = await membership(connection, user_id)
    return int(row.org_id) if row is not None else None


async def confirm_email(connection: AsyncConnection, address: str,
                        now: datetime) -> Sequence[int]:
    """Its holder proved they receive mail at ``address``: the account with this address
    (if any, and not confirmed yet) has its email confirmed. Returns the user ids."""
    u = a.users.c
    found = await email_digest(connection, address)
    result = await connection.execute(
        update(a.users).where(u.email_digest == found, u.email_confirmed_at.is_(None))
        .values(email_confirmed_at=now).returning(u.id))
    return [int(user_id) for user_id in result.scalars()]


async def end_sessions(connection: AsyncConnection, user_id: int, org_id: int | None = None,
                       keep: str | None = None) -> None:
    """Log a user out everywhere (or in one organisation), except the session whose token
    hash is ``keep``."""
    s = a.sessions.c
    statement = delete(a.sessions).where(s.user_id == user_id)
    if org_id is not None:
        statement = statement.where(s.org_id == org_id)
    if keep is not None:
        statement = statement.where(s.token_hash != keep)
    await connection.execute(statement)
