"""Delivery of a probe's results: a batch leaves the buffer only when the server says it
stored it; a refusal or an unreachable server leaves it for the next try, which waits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from dozor import __version__
from dozor.probe.buffer import ResultBuffer
from dozor.probe.sender import Backoff, NotDelivered, Sender
from dozor.probe.wire import ProbeResult
from tests.servers.http import LocalHttpServer


def result(n: int) -> ProbeResult:
    return ProbeResult(monitor_id=2, at_ms=n, ok=True, latency_ms=1.0)


async def test_a_batch_leaves_only_once_the_server_stored_it(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "outbox.db")
    await buffer.open()
    await buffer.add([result(n) for n in range(5)])
    async with LocalHttpServer() as server, aiohttp.ClientSession() as session:
        sender = Sender(buffer, session, server.url("/"), "dzp_secret", batch=3)
        server.serve("/probe/v1/results", status=503, body="restarting")
        with pytest.raises(NotDelivered, match="503"):
            await sender.send_once()
        assert buffer.size == 5
        server.serve("/probe/v1/results", json={"stored": 3})
        assert await sender.send_once() == 3
        assert await sender.send_once() == 2
        assert await sender.send_once() == 0
        bodies = [json.loads(r.body) for r in server.requests]
        assert [len(b["results"]) for b in bodies] == [3, 3, 2]
        assert bodies[0]["results"] == bodies[1]["results"]  # the refused batch again
        assert bodies[0]["version"] == __version__ and bodies[0]["dropped"] == 0
        assert server.requests[-1].headers["Authorization"] == "Bearer dzp_secret"
        assert buffer.size == 0 and sender.delivered == 5
    await buffer.close()


async def test_an_unreachable_server_is_retried_with_growing_waits(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "outbox.db")
    await buffer.open()
    await buffer.add([result(n) for n in range(2)])
    async with LocalHttpServer() as server, aiohttp.ClientSession() as session:
        url = server.url("/")
        server.serve("/probe/v1/results", json={"stored": 2})
    # The server is gone now: its port refuses connections.
    async with aiohttp.ClientSession() as session:
        sender = Sender(buffer, session, url, "t", backoff=Backoff(first=0.01, most=0.05))
        running = asyncio.ensure_future(sender.run_forever())
        await asyncio.sleep(0.3)
        assert sender.backoff.failures >= 3 and buffer.size == 2
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    await buffer.close()


async def test_delivery_resumes_by_itself_when_the_server_is_back(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "outbox.db")
    await buffer.open()
    async with LocalHttpServer() as server, aiohttp.ClientSession() as session:
        server.serve("/probe/v1/results", status=502)
        sender = Sender(buffer, session, server.url("/"), "t",
                        backoff=Backoff(first=0.01, most=0.05))
        running = asyncio.ensure_future(sender.run_forever())
        await buffer.add([result(n) for n in range(4)])
        sender.wake.set()
        for _ in range(200):  # bounded: 2 s at most
            if sender.backoff.failures >= 2:
                break
            await asyncio.sleep(0.01)
        server.serve("/probe/v1/results", json={"stored": 4})
        for _ in range(200):
            if buffer.size == 0:
                break
            await asyncio.sleep(0.01)
        assert buffer.size == 0 and sender.delivered == 4 and sender.backoff.failures == 0
        await buffer.add([result(9)])  # new results wake the idle sender
        sender.wake.set()
        for _ in range(200):
            if sender.delivered == 5:
                break
            await asyncio.sleep(0.01)
        assert sender.delivered == 5
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    await buffer.close()


async def test_the_server_answering_again_cuts_a_long_backoff_short(tmp_path: Path) -> None:
    buffer = ResultBuffer(tmp_path / "outbox.db")
    await buffer.open()
    await buffer.add([result(n) for n in range(3)])
    async with LocalHttpServer() as server, aiohttp.ClientSession() as session:
        server.serve("/probe/v1/results", status=502)
        sender = Sender(buffer, session, server.url("/"), "t",
                        backoff=Backoff(first=60, most=60))  # a minute between tries
        running = asyncio.ensure_future(sender.run_forever())
        for _ in range(200):  # bounded: 2 s at most
            if sender.backoff.failures:
                break
            await asyncio.sleep(0.01)
        server.serve("/probe/v1/results", json={"stored": 3})
        sender.server_back()  # what the agent does when its poll is answered again
        for _ in range(200):
            if buffer.size == 0:
                break
            await asyncio.sleep(0.01)
        assert buffer.size == 0 and sender.delivered == 3
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    await buffer.close()
