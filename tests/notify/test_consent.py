"""Confirmation, opt-out and the consent ledger; bulk-pattern detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import bulk, consent, inbound, outbox
from dozor.notify.channels.base import DeliveryReport, InboundMessage, OptOut
from dozor.notify.guard import Guard, OrgView, PointView, Refuse
from dozor.notify.outbox import NewMessage
from dozor.notify.router import Router
from dozor.store import notify_tables as n
from dozor.store import tables as t
from tests.notify.conftest import add_contact, messages, open_incident

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def code_sent(engine: AsyncEngine, point_id: int, now: datetime = NOW) -> str:
    async with engine.begin() as connection:
        await consent.start_verification(connection, point_id, now, "https://dozor.test")
    message = [m for m in await messages(engine) if m.point_id == point_id][-1]
    assert message.event == "verification" and message.status == "queued"
    return message.subject.rsplit(" ", 1)[1]


async def point(engine: AsyncEngine, point_id: int) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(select(n.contact_points)
                                         .where(n.contact_points.c.id == point_id))).one()


async def ledger(engine: AsyncEngine) -> list[object]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(n.consents)
                                              .order_by(n.consents.c.id))).all())


async def test_a_point_is_confirmed_by_the_code_sent_to_it(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    code = await code_sent(engine, sms)
    async with engine.begin() as connection:
        await consent.confirm_code(connection, sms, code, NOW + timedelta(minutes=2),
                                   source="203.0.113.9", user_agent="curl/8")
    assert (await point(engine, sms)).confirmed_at == NOW + timedelta(minutes=2)
    [grant] = await ledger(engine)
    assert (grant.action, grant.method, grant.source, grant.user_agent) == (
        "granted", "code", "203.0.113.9", "curl/8")
    assert "+48600100200" in grant.text_shown and "opt out" in grant.text_shown


async def test_a_wrong_or_late_code_confirms_nothing(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    code = await code_sent(engine, sms)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt_at, given, error in [(NOW, wrong, "code: wrong code"),
                                     (NOW + timedelta(hours=1), code, "no confirmation")]:
        with pytest.raises(consent.ConsentError, match=error):
            async with engine.begin() as connection:
                await consent.confirm_code(connection, sms, given, attempt_at)
    assert (await point(engine, sms)).confirmed_at is None


async def test_five_wrong_codes_spend_the_verification(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    code = await code_sent(engine, sms)
    for _ in range(consent.MAX_TRIES):
        async with engine.begin() as connection:
            with pytest.raises(consent.ConsentError):
                await consent.confirm_code(connection, sms, "x", NOW)
    with pytest.raises(consent.ConsentError, match="no confirmation is waiting"):
        async with engine.begin() as connection:
            await consent.confirm_code(connection, sms, code, NOW)


async def test_confirmation_messages_are_rate_limited(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    await code_sent(engine, sms)
    with pytest.raises(consent.ConsentError, match="wait a minute"):
        await code_sent(engine, sms, NOW + timedelta(seconds=10))
    await code_sent(engine, sms, NOW + timedelta(minutes=2))
    await code_sent(engine, sms, NOW + timedelta(minutes=4))
    with pytest.raises(consent.TooSoon, match="at most 3 confirmation messages an hour") as hour:
        await code_sent(engine, sms, NOW + timedelta(minutes=6))
    assert hour.value.retry_after == timedelta(minutes=54).total_seconds()


async def test_a_refused_confirmation_says_when_another_may_go(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    await code_sent(engine, sms)
    with pytest.raises(consent.TooSoon) as gap:
        await code_sent(engine, sms, NOW + timedelta(seconds=10))
    assert gap.value.retry_after == 50.0


async def test_a_code_sent_before_an_opt_out_cannot_undo_it(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    code = await code_sent(engine, sms)
    async with engine.begin() as connection:
        await consent.opt_out(connection, "sms", "+48600100200", "keyword", NOW)
    with pytest.raises(consent.ConsentError, match="opted out"):
        async with engine.begin() as connection:
            await consent.confirm_code(connection, sms, code, NOW + timedelta(minutes=1))
    assert (await point(engine, sms)).confirmed_at is None
    assert [g.action for g in await ledger(engine)] == ["withdrawn"]


async def test_a_failing_point_may_be_confirmed_again_and_is_no_longer_failing(
        engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    with pytest.raises(consent.ConsentError, match="already confirmed"):
        await code_sent(engine, sms)
    async with engine.begin() as connection:
        await connection.execute(update(n.contact_points).where(n.contact_points.c.id == sms)
                                 .values(failing_since=NOW, failing_reason="unreachable"))
    code = await code_sent(engine, sms, NOW + timedelta(minutes=1))
    async with engine.begin() as connection:
        await consent.confirm_code(connection, sms, code, NOW + timedelta(minutes=2))
    again = await point(engine, sms)
    assert (again.failing_since, again.confirmed_at) == (None, NOW + timedelta(minutes=2))


async def test_an_email_link_confirms_and_a_telegram_deep_link_confirms_its_chat(
        engine: AsyncEngine) -> None:
    [email, telegram] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "ala@example.com"}, {"kind": "telegram"}],
        confirmed=False)
    await code_sent(engine, email)
    [mail] = await messages(engine)
    token = mail.body.rsplit("/confirm/", 1)[1]
    async with engine.begin() as connection:
        assert await consent.confirm_token(connection, token, NOW, "198.51.100.1") == email
        started = await consent.start_verification(connection, telegram, NOW)
    assert started.method == "deep_link" and started.deep_link_token
    await inbound.apply_events(engine, [InboundMessage(
        "telegram", "123456789", f"/start {started.deep_link_token}", NOW)], NOW)
    confirmed = await point(engine, telegram)
    assert confirmed.address == "123456789" and confirmed.confirmed_at == NOW
    assert [(g.method, g.action) for g in await ledger(engine)] == [
        ("link", "granted"), ("deep_link", "granted")]


async def test_stop_opts_out_at_once_and_cancels_what_was_queued(engine: AsyncEngine) -> None:
    [sms] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}],
                              confirmed=False)
    await code_sent(engine, sms)
    await inbound.apply_events(engine, [InboundMessage("sms", "+48600100200", "Stop", NOW)],
                               NOW)
    assert (await point(engine, sms)).opted_out_at == NOW
    [message] = await messages(engine)
    assert message.status == "cancelled"
    [withdrawal] = await ledger(engine)
    assert (withdrawal.action, withdrawal.method, withdrawal.detail) == (
        "withdrawn", "keyword", "Stop")
    with pytest.raises(consent.ConsentError, match="opted out"):
        await code_sent(engine, sms, NOW + timedelta(minutes=5))


async def test_one_click_unsubscribe_and_provider_opt_outs_withdraw_consent(
        engine: AsyncEngine) -> None:
    [email, viber] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "a@example.com"}, {"kind": "viber", "address": "abcd1234"}])
    token = (await point(engine, email)).unsubscribe_token
    async with engine.begin() as connection:
        assert await consent.opt_out_by_token(connection, token, NOW, "192.0.2.1", "mail")
        assert not await consent.opt_out_by_token(connection, "nope", NOW, None, None)
    await inbound.apply_events(engine, [OptOut("viber", "abcd1234", NOW, "unsubscribed")], NOW)
    assert (await point(engine, email)).opted_out_at == NOW
    assert (await point(engine, viber)).opted_out_at == NOW
    assert [g.method for g in await ledger(engine)] == ["unsubscribe_link", "provider"]


async def test_receipts_update_the_delivery_log(engine: AsyncEngine) -> None:
    [email] = await add_contact(engine, "ala", [{"kind": "email", "address": "a@x.com"}],
                                confirmed=False)
    await code_sent(engine, email)
    async with engine.begin() as connection:
        await connection.execute(update(n.messages).values(status="accepted",
                                                           provider_id="prov-1"))
    await inbound.apply_events(engine, [
        DeliveryReport("prov-1", "delivered", NOW, "DELIVRD"),
        DeliveryReport("unknown", "failed", NOW)], NOW)
    [message] = await messages(engine)
    assert (message.status, message.finished_at) == ("delivered", NOW)


async def test_enumerated_numbers_suspend_messaging_and_the_owner_is_told(
        engine: AsyncEngine) -> None:
    [owner_mail] = await add_contact(engine, "boss", [{"kind": "email", "address": "b@x.com"}],
                                     is_owner=True)
    await add_contact(engine, "victims", [
        {"kind": "sms", "address": f"+4860010020{i}"} for i in range(5)], confirmed=False)
    async with engine.connect() as connection:
        org = (await connection.execute(select(t.organizations))).one()
    assert org.messaging_suspended_reason == "5 consecutive phone numbers added (an enumeration)"
    [notice] = await messages(engine)
    assert (notice.point_id, notice.event) == (owner_mail, "suspended")
    view = OrgView(org.id, org.name, org.sms_credits, org.messaging_suspended_reason)
    guard = Guard()
    owner = await point(engine, owner_mail)
    pv = PointView(owner.id, owner.org_id, owner.contact_id, owner.kind, owner.address, None,
                   owner.confirmed_at, None, owner.unsubscribe_token)
    assert isinstance(guard.judge("down", pv, view, 0, NOW), Refuse)
    assert not isinstance(guard.judge("suspended", pv, view, 0, NOW), Refuse)
    async with engine.begin() as connection:
        await bulk.lift_suspension(connection, org.id)


def test_a_run_of_consecutive_numbers_is_an_enumeration() -> None:
    assert bulk.longest_run([f"+4860010{n:04d}" for n in (1, 2, 3, 7, 8)]) == 3
    assert bulk.longest_run([]) == 0


async def test_an_undelivered_receipt_moves_the_alert_to_the_next_point(
        engine: AsyncEngine) -> None:
    [sms, email] = await add_contact(engine, "ala", [
        {"kind": "sms", "address": "+48600100200", "priority": 0},
        {"kind": "email", "address": "ala@example.com", "priority": 1,
         "escalation_minutes": 60}])
    change = await open_incident(engine, at=NOW)
    async with engine.begin() as connection:
        await Router(group_wait=timedelta(0))(connection, change)
        await connection.execute(update(n.messages).where(n.messages.c.point_id == sms)
                                 .values(status="accepted", provider_id="sms-1"))
    later = NOW + timedelta(minutes=2)
    await inbound.apply_events(engine, [DeliveryReport("sms-1", "failed", later, "UNDELIV")],
                               later)
    by_point = {m.point_id: m for m in await messages(engine)}
    assert by_point[sms].status == "failed"
    assert by_point[email].due_at == later and by_point[email].failover_from == by_point[sms].id


async def test_a_high_failure_rate_suspends_messaging_on_review(engine: AsyncEngine) -> None:
    [point_id] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await outbox.enqueue(connection, [NewMessage(1, None, point_id, "verification",
                                                     f"v{i}", "s", "b", "en", now)
                                          for i in range(30)])
        await connection.execute(update(n.messages).where(n.messages.c.id <= 20)
                                 .values(status="failed"))
        await connection.execute(update(n.messages).where(n.messages.c.id > 20)
                                 .values(status="delivered"))
        assert await bulk.review_active(connection, now) == ["20 of 30 messages failed this week"]
        assert await bulk.review_active(connection, now) == []  # suspended once
