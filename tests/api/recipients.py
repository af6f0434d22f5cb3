"""Helpers for the tests of alert recipients: roles, the audit log, codes in the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import Person


async def promote(database_url: str, person: Person, role: str) -> None:
    """Give a person another role in their organisation (their token stays as it is)."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        user_id = (await accounts.user_by_email(connection, person.email)).id
        await connection.execute(a.memberships.update().where(
            a.memberships.c.user_id == user_id).values(role=role))
    await engine.dispose()


async def audit_actions(database_url: str, org_id: int) -> set[str]:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        actions = set((await connection.execute(select(a.audit_log.c.action).where(
            a.audit_log.c.org_id == org_id))).scalars())
    await engine.dispose()
    return actions


async def code_sent(database_url: str, point_id: int) -> str:
    """The code of the latest confirmation message queued for a point (its subject ends
    with it): what the holder would read on their phone."""
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        subject = (await connection.execute(
            select(n.messages.c.subject).where(n.messages.c.point_id == point_id,
                                               n.messages.c.event == "verification")
            .order_by(n.messages.c.id.desc()))).scalars().first()
    await engine.dispose()
    assert subject is not None, f"no confirmation was queued for point {point_id}"
    return str(subject).rsplit(" ", 1)[1]


async def change_point(database_url: str, point_id: int, **values: Any) -> None:
    """What the notify service does to a point (opt-out, failing), done directly."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(n.contact_points.update()
                                 .where(n.contact_points.c.id == point_id).values(**values))
    await engine.dispose()
