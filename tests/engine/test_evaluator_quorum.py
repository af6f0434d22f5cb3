"""The evaluator with a quorum of locations, in memory: a restart in the middle of an
outage, and maintenance, leave the monitor's incident as it should be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from dozor.core.maintenance import Window
from dozor.core.statemachine import Tracker
from dozor.core.types import ErrorCode, MonitorState, Outcome
from dozor.engine.evaluator import Evaluator
from dozor.engine.model import ActiveMonitor
from tests import fakes  # noqa: F401  (registers the scripted kind)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UP, DOWN = Outcome.up(5.0), Outcome.down(ErrorCode.CONNECTION_REFUSED, "refused", 1.0)


def row(**fields: object) -> SimpleNamespace:
    return SimpleNamespace(**{
        "id": 7, "org_id": 1, "name": "shop", "kind": "scripted", "config": {"key": "shop"},
        "tags": [], "interval_ms": 60_000, "retry_interval_ms": 20_000, "timeout_ms": 10_000,
        "confirm_after": 3, "recover_after": 1, "paused": False, "revision": 1,
        "created_at": T0, "push_token": None, "locations": ["fra", "local", "waw"],
        "confirm_locations": None} | fields)


def monitor(**fields: object) -> ActiveMonitor:
    return ActiveMonitor.from_row(row(**fields))


def test_a_monitor_with_locations_is_judged_by_them_even_by_one() -> None:
    assert monitor().quorum == 2 and monitor(confirm_locations="all").quorum == 3
    assert monitor(locations=["fra"]).quorum == 1  # a probe's results alone decide
    assert monitor(locations=None).quorum is None


def test_after_a_restart_mid_outage_the_incident_stays_open_while_locations_confirm(
        ) -> None:
    evaluator, shop = Evaluator(), monitor()
    evaluator.trackers[shop.id] = Tracker(MonitorState.DOWN, since=T0, incident_open=True)
    for minute in range(3):  # each location needs three failures to confirm again
        for location in ("local", "fra"):
            at = T0 + timedelta(minutes=minute)
            observed = evaluator.evaluate(shop, DOWN, at, location)
            assert observed.transitions == [] and observed.tracker.state is MonitorState.DOWN
    assert evaluator.next_delay(shop, "local") == shop.interval  # confirmed down there
    # Back up here, fra (heard a minute ago) still down: 1 of 2 needed, so up, regional.
    recovered = evaluator.evaluate(shop, UP, T0 + timedelta(minutes=3), "local")
    assert [t.incident for t in recovered.transitions] == ["close"]
    assert recovered.tracker.state is MonitorState.UP and recovered.regional == ("fra",)


def test_inside_maintenance_no_location_is_folded() -> None:
    evaluator, shop = Evaluator(), monitor(confirm_after=1)
    evaluator.set_windows([(1, Window("w", T0, T0 + timedelta(hours=1),
                                      all_monitors=True))])
    inside = evaluator.evaluate(shop, DOWN, T0 + timedelta(minutes=1), "local")
    assert inside.tracker.state is MonitorState.MAINTENANCE
    assert shop.id not in evaluator.locations
