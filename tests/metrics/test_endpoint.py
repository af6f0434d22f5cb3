"""/metrics scraped from the real application under uvicorn, parsed with prometheus_client's
own parsers: monitor states and latencies follow the monitors, counters count, and the
endpoint is guarded as its setting says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import insert

from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.engine.conftest import add_monitor, eventually
from tests.fakes import ScriptedCheck
from tests.servers.dozor import serving

TOKEN = "scrape-me-0123456789abcdef"


def settings_for(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, "database_url": database_url,
                                    "flush_interval": 0.05, "reload_interval": 0.1} | extra)


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, FastAPI]]:
    ScriptedCheck.up.clear()
    async with serving(settings_for(database_url, tmp_path)) as running:
        yield running


async def scrape(base: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{base}/metrics", headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def samples(base: str) -> list[Sample]:
    status, text, _ = await scrape(base)
    assert status == 200, text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float | None:
    matching = [s.value for s in found
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else None


def states(found: list[Sample], monitor: str) -> dict[str, float]:
    return {s.labels["state"]: s.value for s in found
            if s.name == "dozor_monitor_state" and s.labels["monitor_name"] == monitor}


async def test_monitor_states_and_latencies_follow_the_monitors(
        served: tuple[str, FastAPI]) -> None:
    base, app = served
    engine: Engine = app.state.engine
    shop = await add_monitor(engine.database, name="shop", **{"confirm-after": 1})
    await add_monitor(engine.database, name="blog", **{"confirm-after": 1})
    await engine.reload()

    async def both_up() -> bool:
        found = await samples(base)
        return states(found, "shop").get("up") == 1 and states(found, "blog").get("up") == 1
    await eventually(both_up)
    found = await samples(base)
    assert states(found, "shop") == {"unknown": 0, "up": 1, "pending": 0, "down": 0,
                                     "paused": 0, "maintenance": 0}
    assert value(found, "dozor_monitor_state", monitor_id=str(shop), kind="scripted",
                 state="up") == 1
    assert value(found, "dozor_monitor_latency_seconds", monitor_name="shop") == 0.005

    ScriptedCheck.up["shop"] = False

    async def shop_down() -> bool:
        return states(await samples(base), "shop").get("down") == 1
    await eventually(shop_down)
    found = await samples(base)
    assert states(found, "shop")["up"] == 0 and states(found, "blog")["up"] == 1
    assert value(found, "dozor_monitor_latency_seconds", monitor_name="shop") == 0.001

    async with engine.database.begin() as connection:
        await store.set_paused(connection, shop, True)

    async def shop_paused() -> bool:
        return states(await samples(base), "shop").get("paused") == 1
    await eventually(shop_paused)


async def test_a_monitor_checked_by_probes_alone_shows_its_latest_latency(
        served: tuple[str, FastAPI], database_url: str) -> None:
    from tests.probe.server_helpers import add_probe, bearer, result

    base, app = served
    engine: Engine = app.state.engine
    fra, waw = (await add_probe(database_url, "fra-1", "fra"),
                await add_probe(database_url, "waw-1", "waw"))
    shop = await add_monitor(engine.database, name="shop", locations=["fra", "waw"])
    await engine.reload()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)

    async def deliver(token: str, at_ms: int, latency_ms: float) -> None:
        batch = {"results": [result(shop, at_ms, latency_ms=latency_ms)], "dropped": 0}
        async with aiohttp.ClientSession() as session, session.post(
                f"{base}/probe/v1/results", json=batch, headers=bearer(token)) as answer:
            assert answer.status == 200, await answer.text()

    await deliver(fra, now_ms - 2_000, 80.0)
    assert value(await samples(base), "dozor_monitor_latency_seconds",
                 monitor_name="shop") == 0.08
    await deliver(waw, now_ms - 5_000, 40.0)  # older than fra's: not the latest
    assert value(await samples(base), "dozor_monitor_latency_seconds",
                 monitor_name="shop") == 0.08
    await deliver(waw, now_ms - 1_000, 40.0)
    assert value(await samples(base), "dozor_monitor_latency_seconds",
                 monitor_name="shop") == 0.04


async def test_checks_are_counted_per_kind_with_their_durations(
        served: tuple[str, FastAPI]) -> None:
    base, app = served
    engine: Engine = app.state.engine
    ScriptedCheck.up["flaky"] = False
    await add_monitor(engine.database, name="flaky")
    await engine.reload()

    async def checked_twice() -> bool:
        return (value(await samples(base), "dozor_checks_total", kind="scripted") or 0) >= 2
    await eventually(checked_twice)
    found = await samples(base)
    checks = value(found, "dozor_checks_total", kind="scripted")
    assert value(found, "dozor_check_failures_total", kind="scripted") == checks
    assert value(found, "dozor_check_duration_seconds_count", kind="scripted") == checks
    buckets = [s for s in found if s.name == "dozor_check_duration_seconds_bucket"]
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    assert value(found, "dozor_check_duration_seconds_bucket", kind="scripted",
                 le="0.005") == checks  # a scripted check takes microseconds
    assert (value(found, "dozor_check_duration_seconds_sum", kind="scripted") or 1) < 0.005 * (
        checks or 0)
    assert (value(found, "dozor_scheduler_lag_seconds_count") or 0) >= (checks or 0)
    assert value(found, "dozor_scheduler_lag_seconds", quantile="0.99") is not None
    assert value(found, "dozor_result_queue_length") is not None
    assert (value(found, "dozor_results_written_total") or 0) >= 1
    assert value(found, "dozor_outbox_messages", state="queued") == 0
    assert value(found, "dozor_outbox_messages", state="sending") == 0
    assert value(found, "dozor_outbox_oldest_due_seconds") == 0
    assert value(found, "process_cpu_seconds_total") is not None


async def test_queued_messages_show_as_outbox_depth(served: tuple[str, FastAPI]) -> None:
    base, app = served
    engine: Engine = app.state.engine
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    async with engine.database.begin() as connection:
        await connection.execute(insert(t.metadata.tables["messages"]).values([
            {"org_id": 1, "event": "down", "idempotency_key": f"k{i}", "subject": "s",
             "body": "b", "language": "en", "status": status, "due_at": due,
             "created_at": long_ago}
            for i, (status, due) in enumerate([("queued", long_ago),
                                               ("queued", datetime(2999, 1, 1, tzinfo=UTC)),
                                               ("delivered", long_ago)])]))
    # The dispatcher would claim the due one at once: stop it, so the queue stays as set.
    await app.state.notify.stop()
    found = await samples(base)
    assert value(found, "dozor_outbox_messages", state="queued") == 2
    assert value(found, "dozor_outbox_messages", state="delivered") is None
    assert (value(found, "dozor_outbox_oldest_due_seconds") or 0) > 86400 * 365


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(
        served: tuple[str, FastAPI]) -> None:
    base, _ = served
    status, text, headers = await scrape(
        base, Accept="application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    names = {family.name for family in openmetrics(text)}
    assert {"dozor_monitor_state", "dozor_checks", "dozor_scheduler_lag_seconds"} <= names


async def test_a_set_token_is_required_as_a_bearer_token(
        database_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path, metrics_token=TOKEN)
    async with serving(settings) as (base, _):
        status, text, headers = await scrape(base)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in text
        status, _, _ = await scrape(base, Authorization=f"Bearer {TOKEN[:-1]}x")
        assert status == 401
        status, text, _ = await scrape(base, Authorization=f"Bearer {TOKEN}")
        assert status == 200 and "dozor_build_info" in text


async def test_without_a_token_several_organisations_are_refused(
        served: tuple[str, FastAPI]) -> None:
    base, app = served
    async with app.state.engine.database.begin() as connection:
        await connection.execute(insert(t.organizations).values(
            slug="second", name="Second", plan="trial", created_at=datetime.now(UTC)))
    status, text, _ = await scrape(base)
    assert status == 403 and "DOZOR_METRICS_TOKEN" in text


async def test_each_live_probe_shows_its_last_contact_lag_and_drops(
        served: tuple[str, FastAPI], database_url: str) -> None:
    from tests.probe.server_helpers import add_probe, bearer, result, revoke

    base, _ = served
    token = await add_probe(database_url, "fra-1", "fra")
    await add_probe(database_url, "old-1", "waw")
    await revoke(database_url, "old-1")
    found = await samples(base)
    assert value(found, "dozor_probe_last_contact_timestamp_seconds", probe="fra-1",
                 location="fra") == 0  # never heard
    assert value(found, "dozor_probe_last_contact_timestamp_seconds", probe="old-1") is None
    at = int(datetime.now(UTC).timestamp() * 1000) - 3_000
    async with aiohttp.ClientSession() as session, session.post(
            f"{base}/probe/v1/results", headers=bearer(token),
            json={"results": [result(999_999, at)], "dropped": 7}) as answer:
        assert answer.status == 200, await answer.text()
    found = await samples(base)
    heard = value(found, "dozor_probe_last_contact_timestamp_seconds", probe="fra-1")
    assert heard is not None and abs(heard - datetime.now(UTC).timestamp()) < 60
    assert value(found, "dozor_probe_dropped_results", probe="fra-1") == 7


async def test_a_silent_probe_shows_as_silent_until_heard_from_again(
        served: tuple[str, FastAPI], database_url: str) -> None:
    from dozor.notify.probe_watch import EPOCH
    from tests.probe.server_helpers import add_probe, bearer

    base, app = served
    token = await add_probe(database_url, "fra-1", "fra")
    await add_probe(database_url, "waw-1", "waw")
    assert value(await samples(base), "dozor_probe_silent", probe="fra-1") == 0
    watch = app.state.notify.probe_watch
    watch.listening_since = EPOCH
    await watch.run_once(datetime.now(UTC) + timedelta(hours=1))
    found = await samples(base)
    assert value(found, "dozor_probe_silent", probe="fra-1", location="fra") == 1
    assert value(found, "dozor_probe_silent", probe="waw-1", location="waw") == 1
    async with aiohttp.ClientSession() as session, session.get(
            f"{base}/probe/v1/monitors", headers=bearer(token)) as answer:
        assert answer.status == 200
    await watch.run_once()
    found = await samples(base)
    assert value(found, "dozor_probe_silent", probe="fra-1") == 0
    assert value(found, "dozor_probe_silent", probe="waw-1") == 1
