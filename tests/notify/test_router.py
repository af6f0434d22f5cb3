"""The router turns state changes into outbox messages for the right points, at the right
time, in the transaction of the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.engine.transitions import StateChange
from dozor.notify.router import Router
from dozor.store import notify_tables as n
from tests.notify.conftest import ORG, add_contact, messages, open_incident, recovery

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday, 13:00 in Warsaw


async def route(engine: AsyncEngine, change: StateChange, router: Router | None = None) -> None:
    async with engine.begin() as connection:
        await (router or Router(group_wait=timedelta(0)))(connection, change)


async def test_a_down_alert_goes_only_to_confirmed_points_that_want_it(
        engine: AsyncEngine) -> None:
    [email, phone_only_up] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "ala@example.com"},
        {"kind": "sms", "address": "+48600100200", "events": ["up"]}])
    await add_contact(engine, "bob", [{"kind": "sms", "address": "+48600100300"}],
                      confirmed=False)
    change = await open_incident(engine, at=AT)
    await route(engine, change)
    [message] = await messages(engine)
    assert (message.point_id, message.event, message.status) == (email, "down", "queued")
    assert message.subject == "DOWN: api (connection refused) since 12:00 UTC"
    assert message.idempotency_key == f"down:{change.incident_id}:{email}"
    assert message.due_at == AT
    await route(engine, change)  # replayed: still one message
    assert len(await messages(engine)) == 1


async def test_texts_follow_the_contacts_language_and_time_zone(engine: AsyncEngine) -> None:
    await add_contact(engine, "ola", [{"kind": "email", "address": "ola@example.com"}],
                      language="pl", timezone="Europe/Warsaw")
    await route(engine, await open_incident(engine, at=AT))
    [message] = await messages(engine)
    assert message.subject == "AWARIA: api (connection refused) od 13:00 CET"
    assert message.language == "pl"


async def test_escalations_wait_their_delay_and_a_recovery_cancels_them(
        engine: AsyncEngine) -> None:
    [email, sms] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "ala@example.com"},
        {"kind": "sms", "address": "+48600100200", "escalation_minutes": 15}])
    change = await open_incident(engine, at=AT)
    await route(engine, change)
    by_point = {m.point_id: m for m in await messages(engine)}
    assert by_point[email].due_at == AT
    assert by_point[sms].due_at == AT + timedelta(minutes=15)
    async with engine.begin() as connection:  # the email went out, the SMS did not yet
        await connection.execute(n.messages.update().where(n.messages.c.point_id == email)
                                 .values(status="accepted"))
    await route(engine, recovery(change, AT + timedelta(minutes=5)))
    after = {(m.point_id, m.event): m for m in await messages(engine)}
    assert after[(sms, "down")].status == "cancelled"
    assert after[(email, "up")].subject == "UP: api after 5 min, since 12:05 UTC"
    assert (sms, "up") not in after  # it never heard of the outage


async def test_outside_active_hours_a_message_is_held_or_handed_to_the_next_point(
        engine: AsyncEngine) -> None:
    night = {"days": [0, 1, 2, 3, 4], "start": "20:00", "end": "06:00"}
    [held] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "ala@example.com", "active_hours": night}],
        timezone="Europe/Warsaw")
    [office, stand_in] = await add_contact(engine, "bob", [
        {"kind": "sms", "address": "+48600100300", "active_hours": night,
         "outside_hours": "next", "priority": 0},
        {"kind": "email", "address": "bob@example.com", "priority": 1}],
        timezone="Europe/Warsaw")
    await route(engine, await open_incident(engine, at=AT))
    by_point = {m.point_id: m for m in await messages(engine)}
    assert by_point[held].due_at == datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # 20:00 CET
    assert office not in by_point and by_point[stand_in].due_at == AT


async def test_policies_choose_contacts_by_monitor_name_or_tag(engine: AsyncEngine) -> None:
    [ala] = await add_contact(engine, "ala", [{"kind": "email", "address": "a@example.com"}])
    [bob] = await add_contact(engine, "bob", [{"kind": "email", "address": "b@example.com"}])
    async with engine.begin() as connection:
        contact_of = {p.id: p.contact_id for p in (await connection.execute(
            n.contact_points.select())).all()}
        await connection.execute(insert(n.alert_policies).values(
            org_id=ORG, name="db team", contact_ids=[contact_of[bob]], all_monitors=False,
            monitor_names=[], tags=["db"], created_at=AT))
    await route(engine, await open_incident(engine, "postgres", tags=["db"], at=AT))
    await route(engine, await open_incident(engine, "web", at=AT))
    assert [m.point_id for m in await messages(engine)] == [bob]
    assert ala


async def test_group_wait_delays_alerts_so_what_fails_together_goes_together(
        engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "email", "address": "a@example.com"}])
    await route(engine, await open_incident(engine, at=AT), Router(timedelta(seconds=5)))
    [message] = await messages(engine)
    assert message.due_at == AT + timedelta(seconds=5)


async def test_an_alert_joins_the_group_already_waiting_for_its_point(
        engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "email", "address": "a@example.com"}])
    router = Router(timedelta(seconds=5))
    await route(engine, await open_incident(engine, "a", at=AT), router)
    await route(engine, await open_incident(engine, "b", at=AT + timedelta(seconds=3)), router)
    assert [m.due_at for m in await messages(engine)] == [AT + timedelta(seconds=5)] * 2
