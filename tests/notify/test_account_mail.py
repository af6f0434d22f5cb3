"""Account emails go through the outbox and the dispatcher like alerts, but to an address
rather than a contact point; what carried a one-time secret loses its text once sent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import account_mail, consent
from dozor.notify.dispatcher import Dispatcher, DispatcherOptions
from dozor.notify.outbox import REDACTED
from tests.notify.conftest import ORG, ScriptedChannel, add_contact, channel_set, messages


async def test_an_account_email_reaches_its_address_without_a_point_or_unsubscribe_link(
        engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await account_mail.send(connection, ORG, "ala@example.com", "password_reset", "pl",
                                datetime.now(UTC), email="ala@example.com", token="dze_x",
                                minutes=60, link="")
    channel = ScriptedChannel()
    options = DispatcherOptions(public_url="https://dozor.example.com")
    await Dispatcher(engine, channel_set(channel), options=options).run_once()
    [(message, recipient)] = channel.sent
    assert (recipient.kind, recipient.address) == ("email", "ala@example.com")
    assert message.subject == "Zmiana hasła w Dozor" and "dze_x" in message.text
    assert message.unsubscribe_url is None
    [row] = await messages(engine)
    assert (row.status, row.point_id, row.to_address) == ("accepted", None, "ala@example.com")


async def test_texts_holding_a_code_are_removed_once_sent_and_others_kept(
        engine: AsyncEngine) -> None:
    [point] = await add_contact(engine, "ala", [{"kind": "email", "address": "a@example.com"}],
                                confirmed=False)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await consent.start_verification(connection, point, now)
        for address in ("b@example.com", "c@example.com"):
            await account_mail.send(connection, ORG, address, "invitation", "en", now,
                                    inviter="Ala", org="Acme", role="viewer", token="dze_y",
                                    days=7, link="")
        await account_mail.send(connection, ORG, "d@example.com", "member_added", "en", now,
                                inviter="Ala", org="Acme", role="viewer")
    channel = ScriptedChannel()
    await Dispatcher(engine, channel_set(channel)).run_once()  # one batch: four at once
    assert len(channel.sent) == 4
    bodies = {row.event: row.body for row in await messages(engine)}
    assert bodies["verification"] == bodies["invitation"] == REDACTED
    assert "Ala added you to Acme" in bodies["member_added"]
