"""A dispatcher process killed (SIGKILL) after claiming, or after sending and before
recording: the message is still delivered, and exactly once per idempotency key (SMSAPI
drops a repeated ``idx``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import channels as _channels  # noqa: F401
from dozor.notify.channels.smsapi import idx
from dozor.notify.channelset import load_channels
from dozor.notify.dispatcher import Dispatcher
from dozor.notify.outbox import NewMessage, enqueue
from dozor.outbound import Outbound
from dozor.privacy import keys
from dozor.store import notify_tables as n
from tests.notify.conftest import ORG, add_contact, events, messages
from tests.servers.smsapi import FakeSmsapi

ROOT = Path(__file__).resolve().parents[2]


async def child_until(database_url: str, phase: str) -> None:
    """Run the dying dispatcher until it has done ``phase``, then kill it."""
    ring = b"\n".join(keys.current().keys).decode().replace("\n", ",")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.notify.crash_child", database_url, phase, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": f"{ROOT}/src", keys.SETTING: ring})
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = (await process.stdout.readline()).decode()
    assert line == f"{phase} 1\n"
    process.send_signal(signal.SIGKILL)
    await process.wait()


@pytest.mark.parametrize("phase", ["after-claim", "after-send"])
async def test_a_killed_dispatcher_loses_nothing_and_sends_nothing_twice(
        engine: AsyncEngine, database_url: str, phase: str) -> None:
    async with FakeSmsapi() as smsapi:
        async with engine.begin() as connection:
            await connection.execute(insert(n.notify_channels).values(
                name="sms", kind="smsapi", config={"token": smsapi.token,
                                                   "api-base": smsapi.url("")},
                priority=0, enabled=True, callback_token=secrets.token_urlsafe(8),
                created_at=datetime.now(UTC)))
        [phone] = await add_contact(engine, "bob", [{"kind": "sms",
                                                     "address": "+48600100300"}])
        async with engine.begin() as connection:
            await enqueue(connection, [NewMessage(ORG, None, phone, "down", "down:1:1",
                                                  "DOWN: shop", "DOWN: shop", "en",
                                                  datetime.now(UTC))])
        await child_until(database_url, phase)
        assert len(smsapi.sent) == (1 if phase == "after-send" else 0)

        outbound = Outbound("dozor-test")

        async def ignore(_: object) -> None:
            return None
        channels = await load_channels(engine, outbound, ignore, "")
        dispatcher = Dispatcher(engine, channels,
                                clock=lambda: datetime.now(UTC) + timedelta(seconds=2))
        try:
            assert await dispatcher.run_once() == 1  # the lease ran out: taken again
        finally:
            await outbound.close()
    [message] = await messages(engine)
    assert message.status == "accepted"
    assert [(s.idx, s.to) for s in smsapi.sent] == [(idx("down:1:1"), "48600100300")]
    assert [e.kind for e in await events(engine, message.id)] == ["accepted"]
