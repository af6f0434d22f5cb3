"""The whole story with real parts: the server (FastAPI app under uvicorn, engine,
router, dispatcher), a real SMTP server, and a local SMSAPI speaking its protocol.

A contact adds an email and a phone and confirms only the email (by the link in the
confirmation mail); another confirms a phone by the SMS code. A monitor goes down: the
email arrives, the unconfirmed phone gets nothing; SMSAPI fails twice and then accepts,
and the delivery log shows three attempts and the delivered receipt SMSAPI calls back
with. Then fifty monitors fail together and each recipient gets one digest.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.app import create_app
from dozor.config.specs import parse_monitor
from dozor.notify import consent
from dozor.settings import Settings
from dozor.store import monitors as monitor_store
from dozor.store import notify_tables as n
from tests.fakes import ScriptedCheck
from tests.notify.conftest import add_contact, events, messages
from tests.servers.smsapi import FakeSmsapi
from tests.servers.smsfake import Answer, unused_port
from tests.servers.smtp import SmtpServer


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll ``check`` (sync or async) until it gives something true; return that."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.05)


@pytest.fixture
async def providers() -> AsyncIterator[tuple[SmtpServer, FakeSmsapi]]:
    async with SmtpServer() as smtp, FakeSmsapi() as smsapi:
        yield smtp, smsapi


@pytest.fixture
async def server(database_url: str, tmp_path: Path, engine: AsyncEngine,
                 providers: tuple[SmtpServer, FakeSmsapi]) -> AsyncIterator[str]:
    smtp, smsapi = providers
    async with engine.begin() as connection:
        for name, kind, config in [
            ("mail", "email", {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                               "from-address": "dozor@example.com"}),
            ("sms", "smsapi", {"token": smsapi.token, "api-base": smsapi.url("")})]:
            await connection.execute(insert(n.notify_channels).values(
                name=name, kind=kind, config=config, priority=0, enabled=True,
                callback_token=secrets.token_urlsafe(16), created_at=datetime.now(UTC)))
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings.model_validate({
        "data_dir": tmp_path, "database_url": database_url, "public_url": base,
        "flush_interval": 0.05, "reload_interval": 0.1, "notify_group_wait": 1.5,
        "notify_retry_base": 0.2})
    ScriptedCheck.up.clear()
    uvicorn_server = uvicorn.Server(uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning",
        lifespan="on"))
    task = asyncio.create_task(uvicorn_server.serve())
    await eventually(lambda: asyncio.sleep(0, uvicorn_server.started))
    yield base
    uvicorn_server.should_exit = True
    await task


async def add_monitors(engine: AsyncEngine, names: list[str]) -> None:
    async with engine.begin() as connection:
        for name in names:
            await monitor_store.create_monitor(connection, parse_monitor({
                "name": name, "kind": "scripted", "key": name, "interval": "1s",
                "retry-interval": "1s", "confirm-after": 1}))


def mails(smtp: SmtpServer, to: str) -> list[Any]:
    return [r.message for r in smtp.received if to in r.rcpt_tos]


async def test_alerts_reach_confirmed_points_only_through_real_providers(
        server: str, engine: AsyncEngine, providers: tuple[SmtpServer, FakeSmsapi]) -> None:
    smtp, smsapi = providers
    [ala_mail, ala_phone] = await add_contact(engine, "ala", [
        {"kind": "email", "address": "ala@example.com"},
        {"kind": "sms", "address": "+48600100200"}], confirmed=False)
    [bob_phone] = await add_contact(engine, "bob", [
        {"kind": "sms", "address": "+48600100300"}], confirmed=False)
    async with engine.begin() as connection:
        await consent.start_verification(connection, ala_mail, datetime.now(UTC), server)
        await consent.start_verification(connection, bob_phone, datetime.now(UTC), server)

    # Ala confirms by the link in the mail (a GET shows a button, the button POSTs).
    [confirmation] = await eventually(lambda: mails(smtp, "ala@example.com"))
    link = re.search(r"http://\S+/confirm/\S+", confirmation.get_content())
    assert link is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(link.group()) as page:
            assert page.status == 200 and "<form method=\"post\">" in await page.text()
        async with http.post(link.group()) as done:
            assert done.status == 200 and "Confirmed" in await done.text()
    # Bob types back the code his phone got.
    sms = await eventually(lambda: [s for s in smsapi.sent if s.to == "48600100300"])
    code = re.search(r"\d{6}", sms[0].text)
    assert code is not None
    async with engine.begin() as connection:
        await consent.confirm_code(connection, bob_phone, code.group(), datetime.now(UTC))

    smsapi.queue(Answer(500, "Internal error"), Answer(503, "busy"))
    await add_monitors(engine, ["shop"])
    ScriptedCheck.up["shop"] = False
    down_mails = await eventually(lambda: [m for m in mails(smtp, "ala@example.com")
                                           if m["Subject"].startswith("DOWN: shop")])
    assert len(down_mails) == 1 and "List-Unsubscribe" in down_mails[0]
    alert = await eventually(lambda: _message(engine, bob_phone, "down", "accepted"))
    assert alert.attempts == 3
    assert [e.kind for e in await events(engine, alert.id)] == ["retry", "retry", "accepted"]
    assert not [s for s in smsapi.sent if s.to == "48600100200"]  # ala's phone: nothing

    sent = next(s for s in smsapi.sent if s.id == alert.provider_id)
    status, _ = await smsapi.report(sent.id, "DELIVERED")  # to the notify_url we gave
    assert status == 200
    delivered = await eventually(lambda: _message(engine, bob_phone, "down", "delivered"))
    assert [e.kind for e in await events(engine, delivered.id)][-1] == "receipt"
    assert ala_phone not in {m.point_id for m in await messages(engine)}

    # Recovery, then a storm: fifty monitors fail together, one digest each.
    ScriptedCheck.up["shop"] = True
    await eventually(lambda: _message(engine, bob_phone, "up", "accepted"))
    before_mail, before_sms = len(smtp.received), len(smsapi.sent)
    storm = [f"site-{i}" for i in range(50)]
    for name in storm:
        ScriptedCheck.up[name] = False
    await add_monitors(engine, storm)
    await eventually(lambda: _count(engine, "down", 51))
    await eventually(lambda: _settled(engine))
    await asyncio.sleep(0.5)  # anything more would have gone out by now
    storm_mails = [r.message for r in smtp.received[before_mail:]]
    storm_sms = smsapi.sent[before_sms:]
    assert [m["Subject"] for m in storm_mails] == ["50 alerts: 50 down"]
    assert len(storm_sms) == 1 and storm_sms[0].to == "48600100300"
    assert storm_sms[0].text.count("DOWN: site-") == 50


async def _message(engine: AsyncEngine, point_id: int, event: str, status: str) -> Any:
    return next((m for m in await messages(engine) if m.point_id == point_id
                 and m.event == event and m.status == status), None)


async def _count(engine: AsyncEngine, event: str, at_least: int) -> bool:
    return len([m for m in await messages(engine) if m.event == event]) >= at_least * 2 - 1


async def _settled(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        open_ = (await connection.execute(select(n.messages.c.id).where(
            n.messages.c.status.in_(("queued", "sending"))))).all()
    return not open_


async def test_a_stop_reply_posted_by_the_provider_opts_the_number_out(
        server: str, engine: AsyncEngine, providers: tuple[SmtpServer, FakeSmsapi]) -> None:
    _, smsapi = providers
    [phone] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    async with engine.connect() as connection:
        channel = (await connection.execute(select(n.notify_channels)
                                            .where(n.notify_channels.c.kind == "smsapi"))).one()
    status, _ = await smsapi.inbound(f"{server}/hooks/{channel.id}/{channel.callback_token}",
                                     "48600100200", "STOP")
    assert status == 200
    async with engine.connect() as connection:
        point = (await connection.execute(select(n.contact_points)
                                          .where(n.contact_points.c.id == phone))).one()
    assert point.opted_out_at is not None
    status, _ = await smsapi.inbound(f"{server}/hooks/{channel.id}/wrong-token",
                                     "48600100200", "STOP")
    assert status == 404
