"""Two ``dozor serve`` processes on one PostgreSQL database share the monitors; one is
killed (SIGKILL) in the middle of outages: the other takes its monitors over, every
monitor keeps being checked, by one node at a time, and every incident reaches its
recipient once, by a real SMTP server. SQLite refuses a second node."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.core.types import MonitorState
from dozor.engine.cluster import ClusterError, SingleNode
from dozor.engine.engine import Engine
from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import nodes
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.engine.test_pings import heartbeat
from tests.notify.conftest import add_contact
from tests.probe.server_helpers import add_probe, bearer, result
from tests.servers.dozor import free_port, serving
from tests.servers.http import LocalHttpServer
from tests.servers.smtp import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
SITES = [f"site-{i}" for i in range(8)]
INTERVAL = 2.0
LEASE = 4.0  # seconds: slack for a loaded machine (a step every 1.3 s)


def environment(database_url: str, data_dir: Path) -> dict[str, str]:
    ring = ",".join(k.decode() for k in keys.current().keys)
    return {**os.environ, "PYTHONPATH": f"{ROOT}/src", keys.SETTING: ring,
            "DOZOR_DATABASE_URL": database_url, "DOZOR_DATA_DIR": str(data_dir),
            "DOZOR_PORT": str(free_port()), "DOZOR_PRIVATE_TARGETS": "allow",
            "DOZOR_NODE_LEASE": f"{LEASE:g}s", "DOZOR_RELOAD_INTERVAL": "0.5s",
            "DOZOR_NOTIFY_GROUP_WAIT": "0.2s", "DOZOR_LOG_LEVEL": "warning"}


async def dozor(env: dict[str, str], *arguments: str, **options: Any
                ) -> asyncio.subprocess.Process:
    """The real ``dozor`` command in its own process."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from dozor.cli import main; main()", *arguments, cwd=ROOT,
        env=env, **options)


async def output_of(env: dict[str, str], *arguments: str) -> tuple[int, str]:
    process = await dozor(env, *arguments, stdout=asyncio.subprocess.PIPE,
                          stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


@asynccontextmanager
async def node(database_url: str, data_dir: Path, name: str
               ) -> AsyncIterator[asyncio.subprocess.Process]:
    """A real ``dozor serve`` in its own process (killed or stopped on the way out)."""
    process = await dozor(environment(database_url, data_dir / name), "serve",
                          stdout=asyncio.subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def until(condition, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.1)


async def leases(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as connection:
        return await nodes.holders(connection)


async def checks_since(engine: AsyncEngine, since_ms: int) -> dict[int, int]:
    """monitor id -> results stored from ``since_ms`` on."""
    async with engine.connect() as connection:
        rows = (await connection.execute(
            select(t.results.c.monitor_id, func.count()).where(t.results.c.at >= since_ms)
            .group_by(t.results.c.monitor_id))).all()
    return {row[0]: row[1] for row in rows}


async def down_messages(engine: AsyncEngine) -> list[tuple[int, int]]:
    async with engine.connect() as connection:
        rows = (await connection.execute(
            select(n.messages.c.incident_id, n.messages.c.point_id)
            .where(n.messages.c.event == "down"))).all()
    return [(row[0], row[1]) for row in rows]


async def incidents(engine: AsyncEngine) -> dict[int, list[int]]:
    """monitor id -> its incidents' ids."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(t.incidents.c.monitor_id, t.incidents.c.id)
                                         .order_by(t.incidents.c.id))).all()
    found: dict[int, list[int]] = {}
    for monitor_id, incident_id in rows:
        found.setdefault(monitor_id, []).append(incident_id)
    return found


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def alerts_about(smtp: SmtpServer, site: str) -> int:
    """Down alerts about ``site`` in the mails received (alone, or a line of a digest)."""
    texts = [r.message.get_content() for r in smtp.received]
    return sum(text.count(f"Monitor {site} is down") + text.count(f"DOWN: {site} (")
               for text in texts)


@pytest.mark.postgres
async def test_a_killed_node_s_monitors_are_taken_over_and_alert_once(
        postgres_url: str, tmp_path: Path) -> None:
    engine = create_engine(postgres_url)
    async with LocalHttpServer() as target, SmtpServer() as smtp:
        ids: dict[str, int] = {}
        async with engine.begin() as connection:
            await connection.execute(insert(n.notify_channels).values(
                name="mail", kind="email", config={
                    "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "from-address": "dozor@example.com"},
                priority=0, enabled=True, callback_token=secrets.token_urlsafe(16),
                created_at=datetime.now(UTC)))
            for site in SITES:
                ids[site] = await store.create_monitor(connection, parse_monitor({
                    "name": site, "kind": "http", "url": target.serve(f"/{site}"),
                    "interval": f"{INTERVAL:g}s", "timeout": "1s", "confirm-after": 1}))
        [point] = await add_contact(engine, "ala", [{"kind": "email",
                                                     "address": "ala@example.com"}])
        async with node(postgres_url, tmp_path, "a") as first:
            async def both_hold_some() -> bool:
                held = await leases(engine)
                return len(held) == len(SITES) and len(set(held.values())) == 2
            async with node(postgres_url, tmp_path, "b"):
                await until(both_hold_some)
                code, listed = await output_of(environment(postgres_url, tmp_path), "nodes")
                assert code == 0 and listed.count(" live") == 2, listed
                # One node at a time checks a monitor: in 3 intervals at most 3-4 checks
                # each (two nodes checking one monitor would store 6 or more).
                start = now_ms()
                await asyncio.sleep(3 * INTERVAL)
                counts = await checks_since(engine, start)
                assert set(counts) == set(ids.values())
                assert max(counts.values()) <= 4, counts

                # Outages on both nodes' monitors: one incident and one alert each.
                held = await leases(engine)
                async with engine.connect() as connection:  # a node is named host:pid
                    first_id = await connection.scalar(select(t.server_nodes.c.id).where(
                        t.server_nodes.c.name.endswith(f":{first.pid}")))
                on_first = [s for s in SITES if held[ids[s]] == first_id]
                on_second = [s for s in SITES if held[ids[s]] != first_id]
                down_before = on_first[:2] + on_second[:1]
                for site in down_before:
                    target.serve(f"/{site}", status=503)

                async def alerted(sites: list[str]) -> bool:
                    return all(alerts_about(smtp, s) >= 1 for s in sites)
                await until(lambda: alerted(down_before))

                # The first node dies without a word; outages go on, one recovers, one
                # more monitor of the dead node's goes down.
                first.send_signal(signal.SIGKILL)
                await first.wait()
                killed_ms = now_ms()
                target.serve(f"/{down_before[0]}")  # recovers
                down_after = on_first[2]
                target.serve(f"/{down_after}", status=503)

                async def all_checked_again() -> bool:
                    return set(await checks_since(engine, killed_ms)) == set(ids.values())
                await until(all_checked_again, LEASE + 3 * INTERVAL + 5)
                survivors = set((await leases(engine)).values())
                assert len(survivors) == 1 and first_id not in survivors
                await until(lambda: alerted([down_after]))
                await asyncio.sleep(2 * INTERVAL)  # room for a duplicate to show up

        found = await incidents(engine)
        for site in down_before + [down_after]:
            assert len(found[ids[site]]) == 1, f"{site}: one outage, one incident"
            assert alerts_about(smtp, site) == 1, f"{site}: one alert"
        assert sorted(await down_messages(engine)) == sorted(
            (found[ids[site]][0], point) for site in down_before + [down_after])
        assert not any(len(v) for k, v in found.items()
                       if k not in {ids[s] for s in down_before + [down_after]})
    await engine.dispose()


async def test_sqlite_runs_one_node_and_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "dozor.db")
    running, second = SingleNode(path), SingleNode(path)
    await running.start()
    try:
        with pytest.raises(ClusterError, match="SQLite runs one server node"):
            await second.start()
        # `dozor serve` refuses with one line, before it listens.
        code, said = await output_of(environment(f"sqlite:///{path}", tmp_path), "serve")
        assert code != 0 and "SQLite runs one server node" in said
        assert "Traceback" not in said and "Dozor on http" not in said
    finally:
        await running.stop()
    await second.start()  # the first one stopped: the file is free again
    await second.stop()


@pytest.mark.postgres
async def test_what_reaches_one_node_is_judged_by_the_node_holding_the_monitor(
        postgres_url: str, tmp_path: Path) -> None:
    """A probe's results and heartbeat pings (a success, then a failure) sent to the node
    that does not hold the monitor: the holder decides (``engine.relay``)."""
    engine = create_engine(postgres_url)
    token = await add_probe(postgres_url, "waw-1", "waw")
    async with engine.begin() as connection:
        shop = await store.create_monitor(connection, parse_monitor({
            "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h",
            "confirm-after": 1, "locations": ["waw"]}))
    nightly, push = await heartbeat(engine, "nightly", **{"confirm-after": 1})
    servers = []
    async with contextlib.AsyncExitStack() as stack:
        for name in ("a", "b"):
            settings = Settings.model_validate({
                "data_dir": tmp_path / name, "database_url": postgres_url,
                "node_lease": "5s", "reload_interval": "0.2s", "private_targets": "allow"})
            servers.append(await stack.enter_async_context(serving(settings)))

        def engines() -> list[Engine]:
            return [app.state.engine for _, app in servers]

        async def divided() -> bool:
            return all(len(e.cluster.held) == 1 for e in engines())  # type: ignore[attr-defined]
        await until(divided, 15)

        def holder_and_other(monitor_id: int) -> tuple[Engine, str, str]:
            """The engine holding the monitor, its node's address, the other's."""
            [(holder, here)] = [(e, b) for e, (b, _) in zip(engines(), servers, strict=True)
                                if e.cluster.keeps(monitor_id)]
            [other] = [b for b, _ in servers if b != here]
            return holder, here, other

        holder, _, elsewhere = holder_and_other(shop)
        async with httpx.AsyncClient(base_url=elsewhere) as http:
            sent = await http.post("/probe/v1/results", headers=bearer(token), json={
                "results": [result(shop, now_ms(), ok=False)], "dropped": 0})
            assert sent.status_code == 200 and sent.json()["stored"] == 1

        async def shop_down() -> bool:
            return holder.evaluator.state(shop) is MonitorState.DOWN
        await until(shop_down, 10)

        async def opened() -> bool:
            return shop in await incidents(engine)
        await until(opened, 10)

        holder, _, elsewhere = holder_and_other(nightly)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{elsewhere}/ping/{push}")).status_code == 200
            await until(lambda: asyncio.sleep(0, holder.evaluator.state(nightly)
                                              is MonitorState.UP), 10)
            assert (await http.get(f"{elsewhere}/ping/{push}/fail")).status_code == 200

        async def nightly_down() -> bool:
            return holder.evaluator.state(nightly) is MonitorState.DOWN
        await until(nightly_down, 10)
    await engine.dispose()
