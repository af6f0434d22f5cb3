"""The probe agent against a fake server and a real local target: it checks what it is
assigned, follows changes, keeps measuring while the server is away, and loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dozor import __version__
from dozor.probe.agent import OUTBOX, Agent, ProbeConfig
from dozor.probe.assignment import Refused
from dozor.probe.buffer import ResultBuffer
from tests.servers.http import LocalHttpServer
from tests.servers.probe_server import FakeProbeServer, http_monitor

TOKEN = "dzp_waw_0123456789abcdef"


async def until(condition: Callable[[], Any], seconds: float = 5.0) -> None:
    """Wait (bounded) for ``condition`` to hold."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "waited too long"
        await asyncio.sleep(0.02)


def hits(target: LocalHttpServer, path: str) -> int:
    return sum(1 for r in target.requests if r.path == path)


@pytest.fixture
async def target() -> AsyncIterator[LocalHttpServer]:
    async with LocalHttpServer() as server:
        server.serve("/up")
        server.serve("/down", status=500)
        yield server


@pytest.fixture
async def server() -> AsyncIterator[FakeProbeServer]:
    async with FakeProbeServer() as fake:
        fake.tokens[TOKEN] = "waw"
        yield fake


def make_agent(server: FakeProbeServer, data_dir: Path, **overrides: Any) -> Agent:
    config = ProbeConfig(server=server.url(), token=TOKEN, data_dir=data_dir,
                         sync_interval=0.05, flush_interval=0.05, retry_first=0.02,
                         retry_most=0.1, last_delivery=2.0, **overrides)
    return Agent(config)


async def started(server: FakeProbeServer, data_dir: Path,
                  *monitors: dict[str, Any]) -> Agent:
    """An agent running, with ``monitors`` assigned first."""
    server.assign(*monitors)
    agent = make_agent(server, data_dir)
    await agent.start()
    return agent


def assert_complete_and_unique(server: FakeProbeServer, target: LocalHttpServer,
                               checked: dict[int, str]) -> None:
    """Every check the target saw reached the server once: (monitor, start) pairs."""
    pairs = server.stored_pairs()
    assert len(pairs) == len(set(pairs))
    for monitor_id, path in checked.items():
        assert server.count(monitor_id) == hits(target, path) > 0


async def test_it_checks_its_monitors_and_every_result_reaches_the_server(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    agent = await started(server, tmp_path, http_monitor(1, target.url("/up")),
                          http_monitor(2, target.url("/down")))
    await until(lambda: server.count(1) >= 3 and server.count(2) >= 3)
    await agent.stop()
    assert agent.location == "waw"
    assert_complete_and_unique(server, target, {1: "/up", 2: "/down"})
    assert {r["ok"] for r in server.results if r["monitor_id"] == 1} == {True}
    assert {r["ok"] for r in server.results if r["monitor_id"] == 2} == {False}
    assert all(b["version"] == __version__ and b["dropped"] == 0 for b in server.bodies)
    assert (tmp_path / OUTBOX).exists() and agent.buffer.size == 0


async def test_a_monitor_removed_from_the_assignment_stops_being_checked(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    agent = await started(server, tmp_path, http_monitor(1, target.url("/up")),
                          http_monitor(2, target.url("/down")))
    await until(lambda: hits(target, "/up") >= 2 and hits(target, "/down") >= 2)
    server.assign(http_monitor(1, target.url("/up")))
    await until(lambda: agent.revision == server.revision)
    removed_at = hits(target, "/down")
    checked_at = hits(target, "/up")
    await until(lambda: hits(target, "/up") >= checked_at + 5)
    await agent.stop()
    assert hits(target, "/down") <= removed_at + 1  # at most one already on its way
    assert 2 not in agent.monitors and 1 in agent.monitors


async def test_a_changed_interval_applies(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    # Monitor 34 runs early in its interval (spread offset 1.3% of it): a minute's
    # interval puts its first run at 0.8 s and its second a minute later.
    agent = await started(server, tmp_path,
                          http_monitor(34, target.url("/up"), interval_ms=60_000))
    await until(lambda: hits(target, "/up") == 1)
    server.assign(http_monitor(34, target.url("/up"), interval_ms=100, revision=2))
    await until(lambda: hits(target, "/up") >= 6, seconds=3)
    await agent.stop()
    assert agent.monitors[34].interval == 0.1


async def test_checking_goes_on_while_the_server_is_away_and_everything_arrives_once(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    agent = await started(server, tmp_path, http_monitor(1, target.url("/up")))
    await until(lambda: server.count(1) >= 2)
    server.failing = 503
    delivered = len(server.results)
    await until(lambda: agent.buffer.size >= 8)
    assert len(server.results) <= delivered + 1  # a batch may have been on its way
    assert agent.monitors  # the assignment is kept
    server.failing = None
    await until(lambda: agent.buffer.size == 0 and server.count(1) >= hits(target, "/up") - 1)
    await agent.stop()
    assert_complete_and_unique(server, target, {1: "/up"})


async def test_a_stopped_server_loses_nothing_measured_meanwhile(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    agent = await started(server, tmp_path, http_monitor(1, target.url("/up")))
    await until(lambda: server.count(1) >= 2)
    await server.close()
    while_away = hits(target, "/up")
    await until(lambda: hits(target, "/up") >= while_away + 8)
    await server.start()  # the same port
    await until(lambda: agent.buffer.size == 0 and server.count(1) >= while_away + 8)
    await agent.stop()
    # A batch cut off by the close may come twice (the server ignores the second):
    # the set of pairs is what must be complete.
    assert len(set(server.stored_pairs())) == hits(target, "/up")


async def test_a_restart_delivers_what_the_previous_run_left(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    first = await started(server, tmp_path, http_monitor(1, target.url("/up")))
    await until(lambda: first.revision == server.revision)
    server.failing = 503
    await until(lambda: first.buffer.size >= 5)
    await first.stop()
    left = ResultBuffer(tmp_path / OUTBOX)
    await left.open()
    waiting = {(r.monitor_id, r.at_ms) for _, r in await left.oldest(10_000)}
    await left.close()
    assert len(waiting) == hits(target, "/up") - len(server.results)

    server.failing = None
    server.assign()  # the second run checks nothing: what arrives is what was left
    second = make_agent(server, tmp_path)
    await second.start()
    await until(lambda: waiting <= set(server.stored_pairs()))
    await second.stop()
    assert_complete_and_unique(server, target, {1: "/up"})


async def test_a_revoked_token_stops_the_agent_saying_so(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    server.assign(http_monitor(1, target.url("/up")))
    agent = make_agent(server, tmp_path)
    running = asyncio.ensure_future(agent.run(asyncio.Event()))
    await until(lambda: server.count(1) >= 1)
    del server.tokens[TOKEN]
    with pytest.raises(Refused, match="token .*revoked"):
        await asyncio.wait_for(running, 10)
    assert agent.finished.is_set()


async def test_a_location_other_than_the_servers_stops_it_naming_both(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    server.assign(http_monitor(1, target.url("/up")))
    agent = make_agent(server, tmp_path, location="fra")
    with pytest.raises(Refused, match="'fra'.*'waw'"):
        await asyncio.wait_for(agent.run(asyncio.Event()), 10)
    assert hits(target, "/up") == 0


async def test_a_stop_request_ends_the_run_and_keeps_the_results(
    server: FakeProbeServer, target: LocalHttpServer, tmp_path: Path
) -> None:
    server.assign(http_monitor(1, target.url("/up")))
    agent = make_agent(server, tmp_path)
    stop = asyncio.Event()
    running = asyncio.ensure_future(agent.run(stop))
    await until(lambda: hits(target, "/up") >= 3)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert_complete_and_unique(server, target, {1: "/up"})
