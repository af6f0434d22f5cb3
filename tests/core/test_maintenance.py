"""Maintenance windows: one-off and recurring, in a time zone with daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.core.maintenance import Window, in_maintenance

NIGHTLY_WARSAW = Window(name="n", cron="0 3 * * *", duration=timedelta(minutes=30),
                        timezone="Europe/Warsaw", tags=frozenset({"web"}))


@pytest.mark.parametrize(("moment", "open_"), [
    (datetime(2026, 1, 15, 2, 0, tzinfo=UTC), True),     # 03:00 in Warsaw (UTC+1)
    (datetime(2026, 1, 15, 2, 29, tzinfo=UTC), True),
    (datetime(2026, 1, 15, 2, 30, tzinfo=UTC), False),    # the end is not inside
    (datetime(2026, 1, 15, 1, 59, tzinfo=UTC), False),
    (datetime(2026, 7, 15, 1, 0, tzinfo=UTC), True),      # 03:00 in summer time (UTC+2)
    (datetime(2026, 7, 15, 2, 0, tzinfo=UTC), False),
])
def test_a_recurring_window_follows_wall_time_in_its_zone(moment: datetime, open_: bool) -> None:
    assert NIGHTLY_WARSAW.is_open(moment) is open_


def test_a_one_off_window_is_open_between_its_bounds() -> None:
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    window = Window(name="o", starts_at=start, ends_at=start + timedelta(hours=1),
                    all_monitors=True)
    assert window.is_open(start) and not window.is_open(start + timedelta(hours=1))
    assert not window.is_open(start - timedelta(seconds=1))


def test_a_window_covers_monitors_by_name_tag_or_all() -> None:
    moment = datetime(2026, 1, 15, 2, 10, tzinfo=UTC)
    assert in_maintenance([NIGHTLY_WARSAW], "shop", {"web"}, moment)
    assert not in_maintenance([NIGHTLY_WARSAW], "db", {"internal"}, moment)
    named = Window(name="x", cron="0 3 * * *", duration=timedelta(hours=1),
                   timezone="Europe/Warsaw", monitor_names=frozenset({"db"}))
    assert in_maintenance([named], "db", set(), moment)


def test_a_window_in_the_repeated_hour_opens_both_times_clocks_show_it() -> None:
    # Europe/Warsaw, 2026-10-25: 02:00-03:00 local happens twice (00:00-01:00 and
    # 01:00-02:00 UTC). A half-hourly window opens in both.
    window = Window(name="w", cron="*/30 * * * *", duration=timedelta(minutes=10),
                    timezone="Europe/Warsaw", all_monitors=True)
    for hour, minute in ((0, 0), (0, 30), (1, 0), (1, 30)):
        moment = datetime(2026, 10, 25, hour, minute + 5, tzinfo=UTC)
        assert window.is_open(moment), moment


def test_a_cron_that_never_matches_is_never_open() -> None:
    never = Window(name="never", cron="0 0 30 2 *", duration=timedelta(hours=1),
                   all_monitors=True)
    assert not never.is_open(datetime(2026, 2, 28, tzinfo=UTC))
