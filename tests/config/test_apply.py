"""Applying a monitors file is idempotent, removes only what it manages, and is atomic."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.apply import apply_plan, make_plan
from dozor.config.specs import maintenance_from_row, parse_monitor
from dozor.config.yamlfile import dump, load_text
from dozor.store import monitors as store
from tests import fakes  # noqa: F401  (registers the scripted kind)

FILE = """\
monitors:
  - {name: alpha, kind: scripted, key: a}
  - {name: beta, kind: scripted, key: b, interval: 2m}
maintenance:
  - {name: nightly, cron: "0 3 * * *", duration: 30m, all-monitors: true}
"""


async def apply_text(engine: AsyncEngine, text: str) -> list[str]:
    async with engine.begin() as connection:
        plan = await make_plan(connection, load_text(text))
        await apply_plan(connection, plan)
    return plan.lines()


async def names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return [row.name for row in await store.list_monitors(connection)]


async def test_applying_twice_changes_nothing_the_second_time(engine: AsyncEngine) -> None:
    first = await apply_text(engine, FILE)
    assert first == ["+ create monitor alpha", "+ create monitor beta",
                     "~ save maintenance window nightly"]
    async with engine.connect() as connection:
        revision = await store.current_revision(connection)
    assert await apply_text(engine, FILE) == []
    async with engine.connect() as connection:
        assert await store.current_revision(connection) == revision


async def test_a_changed_field_is_an_update_and_a_missing_monitor_is_removed(
    engine: AsyncEngine
) -> None:
    await apply_text(engine, FILE)
    changed = FILE.replace("key: a}", "key: a, confirm-after: 5}").replace(
        "  - {name: beta, kind: scripted, key: b, interval: 2m}\n", "")
    assert await apply_text(engine, changed) == [
        "~ update monitor alpha (confirm_after)", "- remove monitor beta"]
    assert await names(engine) == ["alpha"]


async def test_monitors_made_by_hand_are_never_removed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await store.create_monitor(connection, parse_monitor(
            {"name": "manual", "kind": "scripted", "key": "m"}))
    await apply_text(engine, FILE)
    await apply_text(engine, "monitors: []\n")
    assert await names(engine) == ["manual"]


async def test_a_dry_run_plan_changes_nothing(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        plan = await make_plan(connection, load_text(FILE))
    assert len(plan.create) == 2
    assert await names(engine) == []


async def test_an_exported_one_off_window_applies_back_unchanged(engine: AsyncEngine) -> None:
    text = ("maintenance:\n  - {name: move, start: '2026-12-01 02:00', end: '2026-12-01 04:00',"
            " timezone: Europe/Warsaw, all-monitors: true}\n")
    await apply_text(engine, text)
    async with engine.connect() as connection:
        windows = [maintenance_from_row(r) for r in await store.list_maintenance(connection)]
    exported = dump([], windows)
    assert "2026-12-01T02:00:00+01:00" in exported and "Europe/Warsaw" in exported
    assert await apply_text(engine, exported) == []
