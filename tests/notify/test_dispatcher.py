"""The dispatcher claims due messages, asks the guard, sends through the channels that
reach the point, and records every attempt; retries, fail-over and digests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import outbox
from dozor.notify.channels.base import DeliveryError, Receipt
from dozor.notify.delivery import RetryPolicy
from dozor.notify.dispatcher import Dispatcher, DispatcherOptions
from dozor.notify.guard import Guard, GuardLimits
from dozor.notify.outbox import NewMessage
from dozor.notify.router import Router
from dozor.store import notify_tables as n
from dozor.store import tables as t
from tests.notify.conftest import (
    ORG,
    ScriptedChannel,
    add_contact,
    channel_set,
    events,
    messages,
    open_incident,
)

FAST = DispatcherOptions(retry=RetryPolicy(base=timedelta(seconds=10), jitter=0.0,
                                           max_attempts=4))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def alert(engine: AsyncEngine, name: str = "api") -> None:
    change = await open_incident(engine, name, at=datetime.now(UTC) - timedelta(seconds=1))
    async with engine.begin() as connection:
        await Router(group_wait=timedelta(0))(connection, change)


async def test_transient_errors_are_retried_with_backoff_and_logged(engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "email", "address": "a@example.com"}])
    await alert(engine)
    channel = ScriptedChannel(script=[DeliveryError("HTTP 503", permanent=False),
                                      DeliveryError("HTTP 429", permanent=False,
                                                    retry_after=60.0)])
    clock = Clock()
    dispatcher = Dispatcher(engine, channel_set(channel), options=FAST, clock=clock)
    assert await dispatcher.run_once() == 1
    [message] = await messages(engine)
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.due_at == clock.now + timedelta(seconds=10)
    assert await dispatcher.run_once() == 0  # not due yet
    clock.advance(10)
    await dispatcher.run_once()
    [message] = await messages(engine)
    assert message.due_at == clock.now + timedelta(seconds=60)  # Retry-After beats 20 s
    clock.advance(60)
    await dispatcher.run_once()
    [message] = await messages(engine)
    assert (message.status, message.attempts, message.provider_id) == ("accepted", 3, "p3")
    log = await events(engine, message.id)
    assert [e.kind for e in log] == ["retry", "retry", "accepted"]
    assert [e.detail for e in log][:2] == ["HTTP 503", "HTTP 429"]
    assert len(channel.sent) == 3
    assert {m.idempotency_key for m, _ in channel.sent} == {message.idempotency_key}


async def test_a_permanent_error_marks_the_point_failing_tells_the_owner_and_fails_over(
        engine: AsyncEngine) -> None:
    [sms, email] = await add_contact(engine, "ala", [
        {"kind": "sms", "address": "+48600100200", "priority": 0},
        {"kind": "email", "address": "ala@example.com", "priority": 1,
         "escalation_minutes": 60}])
    [owner] = await add_contact(engine, "boss", [
        {"kind": "email", "address": "boss@example.com", "events": []}], is_owner=True)
    await alert(engine)
    sms_channel = ScriptedChannel("sms", [DeliveryError("invalid number", permanent=True)])
    mail = ScriptedChannel("email")
    dispatcher = Dispatcher(engine, channel_set(sms_channel, mail), options=FAST)
    await dispatcher.run_once()
    await dispatcher.run_once()  # the fail-over and the owner's notice
    by_point = {(m.point_id, m.event): m for m in await messages(engine)}
    assert by_point[(sms, "down")].status == "failed"
    assert by_point[(email, "down")].failover_from == by_point[(sms, "down")].id
    assert by_point[(email, "down")].status == "accepted"
    notice = by_point[(owner, "point_failing")]
    assert notice.status == "accepted" and "+48…200" in notice.subject
    async with engine.connect() as connection:
        point = (await connection.execute(select(n.contact_points)
                                          .where(n.contact_points.c.id == sms))).one()
    assert point.failing_reason == "invalid number"


async def test_a_channel_fault_moves_on_to_the_next_channel_for_that_point(
        engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    await alert(engine)
    broken = ScriptedChannel("sms", [DeliveryError("bad token", permanent=True,
                                                   channel_fault=True)])
    spare = ScriptedChannel("sms")
    await Dispatcher(engine, channel_set(broken, spare), options=FAST).run_once()
    [message] = await messages(engine)
    assert message.status == "accepted" and len(spare.sent) == 1
    assert [e.kind for e in await events(engine, message.id)] == ["channel", "accepted"]


async def test_messages_due_together_for_one_point_go_as_one_digest(
        engine: AsyncEngine) -> None:
    [email] = await add_contact(engine, "ala", [{"kind": "email", "address": "a@x.com"}])
    for index in range(50):
        await alert(engine, f"site-{index}")
    channel = ScriptedChannel("email")
    await Dispatcher(engine, channel_set(channel), options=FAST).run_once()
    [(digest, point)] = channel.sent
    assert point.id == email and digest.event == "digest"
    assert digest.subject == "50 alerts: 50 down"
    assert "DOWN: site-7 " in digest.text
    stored = await messages(engine)
    assert {m.status for m in stored} == {"accepted"}
    assert len({m.batch_key for m in stored}) == 1
    assert sum(m.parts for m in stored) == 1  # one message sent, counted once


async def test_the_guard_refuses_what_was_not_confirmed_or_was_opted_out(
        engine: AsyncEngine) -> None:
    [point] = await add_contact(engine, "ala", [{"kind": "email", "address": "a@x.com"}],
                                confirmed=False)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await outbox.enqueue(connection, [NewMessage(ORG, None, point, "down", "k1", "s", "b",
                                                     "en", now)])
    channel = ScriptedChannel("email")
    await Dispatcher(engine, channel_set(channel), options=FAST).run_once()
    [message] = await messages(engine)
    assert (message.status, message.last_error) == ("refused",
                                                    "the contact point is not confirmed")
    assert channel.sent == []


async def test_sms_spend_credits_and_none_go_out_without_them(engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    async with engine.begin() as connection:
        await connection.execute(update(t.organizations).values(sms_credits=2))
    await alert(engine, "a")
    channel = ScriptedChannel("sms", [Receipt("x", parts=2)])
    dispatcher = Dispatcher(engine, channel_set(channel), options=FAST)
    await dispatcher.run_once()
    await alert(engine, "b")
    await dispatcher.run_once()
    first, second = await messages(engine)
    assert first.status == "accepted" and first.parts == 2
    assert (second.status, second.last_error) == ("refused", "no SMS credits left")
    async with engine.connect() as connection:
        credits = (await connection.execute(select(t.organizations.c.sms_credits))).scalar()
    assert credits == 0


async def test_beyond_the_hourly_cap_messages_are_held_and_then_sent_as_one_digest(
        engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "email", "address": "a@x.com"}])
    clock = Clock()
    channel = ScriptedChannel("email")
    dispatcher = Dispatcher(engine, channel_set(channel), Guard(GuardLimits(
        recipient_per_hour=2)), options=FAST, clock=clock)
    for name in ("a", "b", "c", "d", "e"):
        await alert(engine, name)
        await dispatcher.run_once()
    assert len(channel.sent) == 2
    held = [m for m in await messages(engine) if m.status == "queued"]
    assert len(held) == 3 and len({m.due_at for m in held}) <= 3
    clock.advance(3601)  # the first two left the hour's window
    await dispatcher.run_once()
    assert len(channel.sent) == 3 and channel.sent[-1][0].subject == "3 alerts: 3 down"


async def test_a_message_whose_claim_expired_is_sent_again_under_its_key(
        engine: AsyncEngine) -> None:
    await add_contact(engine, "ala", [{"kind": "email", "address": "a@x.com"}])
    await alert(engine)
    clock = Clock()
    async with engine.begin() as connection:  # a dispatcher claims it, then dies
        [claimed] = await outbox.claim(connection, clock.now, timedelta(minutes=2), 10)
    channel = ScriptedChannel("email")
    dispatcher = Dispatcher(engine, channel_set(channel), options=FAST, clock=clock)
    assert await dispatcher.run_once() == 0  # still leased to the dead one
    clock.advance(121)
    assert await dispatcher.run_once() == 1
    assert channel.sent[0][0].idempotency_key == claimed.idempotency_key


async def test_two_dispatchers_never_send_one_message_twice(engine: AsyncEngine) -> None:
    points = await add_contact(engine, "ala", [
        {"kind": "webhook", "address": f"https://hooks.example/{i}"} for i in range(20)])
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await outbox.enqueue(connection, [
            NewMessage(ORG, None, point, "down", f"k{point}-{j}", "s", "b", "en", now)
            for point in points for j in range(3)])
    first, second = (ScriptedChannel("webhook", delay=0.005) for _ in range(2))
    options = DispatcherOptions(batch=7)  # many small claims, interleaved
    dispatchers = [Dispatcher(engine, channel_set(c), options=options)
                   for c in (first, second)]

    async def drain(dispatcher: Dispatcher) -> None:
        while await dispatcher.run_once():
            await asyncio.sleep(0)
    await asyncio.gather(*(drain(d) for d in dispatchers))
    assert first.sent and second.sent  # both took part
    stored = await messages(engine)
    assert len(stored) == 60 and {(m.status, m.attempts) for m in stored} == {("accepted", 1)}
    for message in stored:  # each went out in exactly one send
        assert [e.kind for e in await events(engine, message.id)] == ["accepted"]
    keys = [m.idempotency_key for m, _ in first.sent + second.sent]
    assert len(keys) == len(set(keys))
