"""Heartbeat monitors: decided from recorded pings alone, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dozor.checks.base import CheckContext, HeartbeatSignals
from dozor.checks.heartbeat import HeartbeatCheck, HeartbeatConfig, evaluate, next_expected
from dozor.core.types import ErrorCode

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOURLY = HeartbeatConfig(period="1h", grace="5m")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
        ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def after(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def success(at: datetime, started: datetime | None = None) -> HeartbeatSignals:
    return HeartbeatSignals(last_ping_at=at, last_start_at=started, last_ping_kind="success")


def started(at: datetime) -> HeartbeatSignals:
    return HeartbeatSignals(last_ping_at=at, last_start_at=at, last_ping_kind="start")


NEVER = HeartbeatSignals()


@pytest.mark.parametrize(
    ("name", "signals", "now", "created", "error"),
    [
        ("a ping well inside the period is up", success(T0), after(minutes=30), None, None),
        ("the last moment of grace is still up", success(T0), after(hours=1, minutes=5), None,
         None),
        ("one second past grace is down", success(T0), after(hours=1, minutes=5, seconds=1),
         None, ErrorCode.NO_HEARTBEAT),
        ("never pinged is up within period and grace of creation", NEVER,
         after(hours=1, minutes=5), T0, None),
        ("never pinged is down past period and grace of creation", NEVER,
         after(hours=1, minutes=5, seconds=1), T0, ErrorCode.NO_HEARTBEAT),
        ("never pinged with no creation time is new, so up", NEVER, after(days=30), None, None),
        ("a fail signal is down at once", HeartbeatSignals(T0, None, "fail"), after(seconds=1),
         None, ErrorCode.HEARTBEAT_FAILED),
        ("a start within grace is up", started(T0), after(minutes=5), None, None),
        ("a start with no end past grace is down", started(T0), after(minutes=5, seconds=1),
         None, ErrorCode.NO_HEARTBEAT),
        ("a start after a fail means a new run", HeartbeatSignals(T0, after(minutes=1), "fail"),
         after(minutes=2), None, None),
        ("a success after a start is up", success(after(minutes=3), T0), after(minutes=4), None,
         None),
    ],
)
def test_period_rules(
    name: str, signals: HeartbeatSignals, now: datetime, created: datetime | None,
    error: ErrorCode | None,
) -> None:
    outcome = evaluate(HOURLY, signals, now, created)
    assert outcome.ok is (error is None), outcome.message
    assert outcome.error is error


def test_a_hung_job_is_reported_as_hanging() -> None:
    outcome = evaluate(HOURLY, started(T0), after(minutes=6))
    assert outcome.message is not None
    assert "started at 2026-01-01T12:00:00+00:00" in outcome.message
    assert "may hang" in outcome.message


def test_a_late_job_names_its_last_ping() -> None:
    outcome = evaluate(HOURLY, success(T0), after(hours=2))
    assert outcome.message == (
        "no ping within 1h plus 5m grace; last ping at 2026-01-01T12:00:00+00:00"
    )


def test_a_failed_job_says_when_it_failed() -> None:
    outcome = evaluate(HOURLY, HeartbeatSignals(T0, None, "fail"), after(minutes=1))
    assert outcome.message == "the job reported failure at 2026-01-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("signals", "latency_ms"),
    [
        (success(after(minutes=2), started=T0), 120_000.0),
        (success(T0), None),
        (success(T0, started=after(minutes=1)), None),  # start after success: running
        (success(after(hours=73), started=T0), None),  # that start belonged to an older run
        (HeartbeatSignals(after(minutes=2), T0, "fail"), None),
    ],
)
def test_job_duration_is_the_time_from_start_to_success(
    signals: HeartbeatSignals, latency_ms: float | None
) -> None:
    outcome = evaluate(HOURLY, signals, after(hours=73, minutes=1))
    assert outcome.latency_ms == latency_ms
    assert outcome.details.get("job_duration_ms") == latency_ms


def test_details_say_when_the_next_ping_is_due() -> None:
    outcome = evaluate(HOURLY, success(T0, started=after(seconds=-30)), after(minutes=1))
    assert outcome.details == {
        "last_ping_at": "2026-01-01T12:00:00+00:00",
        "last_ping_kind": "success",
        "last_start_at": "2026-01-01T11:59:30+00:00",
        "next_ping_due": "2026-01-01T13:00:00+00:00",
        "next_ping_late_after": "2026-01-01T13:05:00+00:00",
        "job_duration_ms": 30_000.0,
    }


WARSAW_9AM = HeartbeatConfig(cron="0 9 * * *", timezone="Europe/Warsaw", grace="5m")
WARSAW_0230 = HeartbeatConfig(cron="30 2 * * *", timezone="Europe/Warsaw", grace="5m")


@pytest.mark.parametrize(
    ("name", "config", "last_ping", "now", "error"),
    [
        # 09:00 is 08:00 UTC in winter and 07:00 UTC from 29 March 2026 (CEST).
        ("spring forward: 09:00 CEST plus grace is still up", WARSAW_9AM, utc(2026, 3, 28, 8),
         utc(2026, 3, 29, 7, 5), None),
        ("spring forward: the 09:00 CEST run is missed an hour earlier in UTC", WARSAW_9AM,
         utc(2026, 3, 28, 8), utc(2026, 3, 29, 7, 5, 1), ErrorCode.NO_HEARTBEAT),
        ("fall back: 09:00 CET has not come yet at 08:30 CET", WARSAW_9AM, utc(2026, 10, 24, 7),
         utc(2026, 10, 25, 7, 30), None),
        ("fall back: the 09:00 CET run is missed an hour later in UTC", WARSAW_9AM,
         utc(2026, 10, 24, 7), utc(2026, 10, 25, 8, 5, 1), ErrorCode.NO_HEARTBEAT),
        ("a run in the skipped hour is due when clocks jump to 03:00", WARSAW_0230,
         utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 5, 1), ErrorCode.NO_HEARTBEAT),
        ("a run in the skipped hour within grace of the jump is up", WARSAW_0230,
         utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 5), None),
        ("a run in the repeated hour is expected once, at its first 02:30", WARSAW_0230,
         utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 40), None),
        ("a missed first 02:30 in the repeated hour is down", WARSAW_0230,
         utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 35, 1), ErrorCode.NO_HEARTBEAT),
    ],
)
def test_cron_rules_follow_the_wall_clock_across_dst(
    name: str, config: HeartbeatConfig, last_ping: datetime, now: datetime,
    error: ErrorCode | None,
) -> None:
    outcome = evaluate(config, success(last_ping), now)
    assert outcome.ok is (error is None), outcome.message
    assert outcome.error is error


@pytest.mark.parametrize(
    ("now", "ok"),
    [(utc(2026, 3, 29, 7, 5), True), (utc(2026, 3, 30, 7, 5), True),
     (utc(2026, 3, 30, 7, 5, 1), False)],
)
def test_cron_expects_no_run_before_the_monitor_was_created(now: datetime, ok: bool) -> None:
    # Created at 09:30 CEST on 29 March: the 09:00 run that day is not owed.
    outcome = evaluate(WARSAW_9AM, NEVER, now, created_at=utc(2026, 3, 29, 7, 30))
    assert outcome.ok is ok, outcome.message


def test_a_missed_cron_run_names_its_local_time() -> None:
    outcome = evaluate(WARSAW_9AM, success(utc(2026, 3, 28, 8)), utc(2026, 3, 29, 8))
    assert outcome.message == (
        "missed the run due at 2026-03-29T09:00:00+02:00 (cron '0 9 * * *' in Europe/Warsaw, "
        "grace 5m); last ping at 2026-03-28T09:00:00+01:00"
    )


@pytest.mark.parametrize(
    ("config", "moment", "due"),
    [
        (HOURLY, T0, after(hours=1)),
        (HeartbeatConfig(cron="*/15 * * * *"), utc(2026, 1, 1, 12, 7), utc(2026, 1, 1, 12, 15)),
        (HeartbeatConfig(cron="*/15 * * * *"), utc(2026, 1, 1, 12, 15), utc(2026, 1, 1, 12, 30)),
        (HeartbeatConfig(cron="@daily"), T0, utc(2026, 1, 2)),
        (WARSAW_9AM, utc(2026, 3, 28, 12), utc(2026, 3, 29, 7)),
        (WARSAW_9AM, utc(2026, 10, 24, 12), utc(2026, 10, 25, 8)),
        (WARSAW_0230, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),  # at the jump, 03:00 CEST
        (WARSAW_0230, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),  # not again at CET
        (HeartbeatConfig(cron="0 * * * *", timezone="Europe/Warsaw"), utc(2026, 10, 25, 0, 30),
         utc(2026, 10, 25, 2)),  # the repeated 02:00 CET is skipped
        (HOURLY, datetime(2026, 1, 1, 12), after(hours=1)),  # naive means UTC
    ],
)
def test_next_expected_tells_when_the_next_ping_is_due(
    config: HeartbeatConfig, moment: datetime, due: datetime
) -> None:
    result = next_expected(config, moment)
    assert result == due
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "R * * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"period": "1h", "timezone": "Europe/Warsaw"}, "timezone"),
        ({"period": "1h", "cron": "0 9 * * *"}, "either period or cron, not both"),
        ({}, "set period"),
        ({"period": "soon"}, "period"),
        ({"period": "0s"}, "period"),
        ({"period": "1h", "grace": "-5m"}, "grace"),
        ({"period": "1h", "graze": "5m"}, "graze"),
    ],
)
def test_bad_config_is_refused_naming_the_field(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HeartbeatConfig.model_validate(data)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [{"period": "1h"}, {"period": 90, "grace": 0}, {"cron": "0  9 * * MON-FRI"},
     {"cron": "@hourly", "timezone": "America/New_York", "grace": "1m"}],
)
def test_a_config_reads_back_from_its_json_dump(data: dict[str, Any]) -> None:
    config = HeartbeatConfig.model_validate(data)
    assert HeartbeatConfig.model_validate(config.model_dump(mode="json")) == config


async def test_the_check_reads_its_signals_from_the_context() -> None:
    ctx = CheckContext(timeout=5, now=after(hours=1, minutes=30), monitor_created_at=T0,
                       heartbeat=success(after(minutes=50)))
    assert (await HeartbeatCheck().run(HOURLY, ctx)).ok
    ctx.heartbeat = None
    outcome = await HeartbeatCheck().run(HOURLY, ctx)
    assert outcome.error is ErrorCode.NO_HEARTBEAT
