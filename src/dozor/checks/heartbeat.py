"""Heartbeat (push) monitors, like Healthchecks.io: the monitored job pings Dozor.

This check does no I/O. The push endpoint records signals (``ctx.heartbeat``) and this
check decides from them, ``ctx.now`` and ``ctx.monitor_created_at`` whether the job is
on time. ``last_ping_at`` is the time of the most recent ping of any kind and
``last_ping_kind`` its kind (``success``, ``fail`` or ``start``); ``last_start_at`` is the
time of the most recent ``start``.

A job is expected either every ``period`` or on a ``cron`` schedule read in ``timezone``;
``grace`` is how late a ping may be. The rules, first match wins:

- the last ping was ``fail``: down, HEARTBEAT_FAILED;
- a ``start`` had no ``success`` or ``fail`` within ``grace``: down, NO_HEARTBEAT (hung);
- the next ping after the last one (or after creation, if never pinged) was due more
  than ``grace`` ago: down, NO_HEARTBEAT.

A monitor never pinged whose creation time is unknown stays up ("new", as in
Healthchecks): there is no moment a first ping was due by.

>>> from datetime import datetime, UTC
>>> config = HeartbeatConfig(period="1h", grace="5m")
>>> next_expected(config, datetime(2026, 1, 1, 12, 0, tzinfo=UTC)).isoformat()
'2026-01-01T13:00:00+00:00'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import field_validator, model_validator

from dozor.checks.base import CheckConfig, CheckContext, HeartbeatSignals, register
from dozor.core.durations import format_duration
from dozor.core.types import ErrorCode, Outcome
from dozor.validation import Duration

# A "start" older than this most likely belongs to an earlier run that never reported:
# timing a success against it would record a bogus job duration.
MAX_JOB_DURATION = timedelta(hours=72)

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
# croniter's extensions H (hashed) and R (random) would make the schedule unpredictable.
_RANDOM_FIELD = re.compile(r"(?<![a-z])[hr](?![a-z])", re.IGNORECASE)
# Gaps in local time (spring forward) are at most a day long (Samoa, 2011).
_MAX_GAP_MINUTES = 26 * 60




class HeartbeatConfig(CheckConfig):
    """When pings are due: every ``period``, or on a ``cron`` schedule in ``timezone``.

    >>> HeartbeatConfig.model_validate({"cron": "0 9 * * 1-5", "timezone": "Europe/Warsaw"}).grace
    datetime.timedelta(seconds=300)
    """

    period: Duration | None = None
    cron: str | None = None
    timezone: str = "UTC"
    grace: Duration = timedelta(minutes=5)

    @field_validator("period")
    @classmethod
    def _period_is_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("period must be longer than zero")
        return value

    @field_validator("grace")
    @classmethod
    def _grace_is_not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("grace must not be negative")
        return value

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        return None if value is None else _validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_is_known(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name "
                             "such as Europe/Warsaw or UTC)") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> HeartbeatConfig:
        if self.period is not None and self.cron is not None:
            raise ValueError("set either period or cron, not both")
        if self.period is None and self.cron is None:
            raise ValueError("set period (e.g. 1h) or cron (e.g. '0 3 * * *')")
        # UTC is the default, so a dumped period config still reads back.
        if self.period is not None and self.timezone != "UTC":
            raise ValueError("timezone applies only to cron schedules, not to period")
        return self

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)


def _validate_cron(value: str) -> str:
    expression = " ".join(value.split())
    if expression.startswith("@"):
        if expression.lower() not in _MACROS:
            raise ValueError(f"unknown cron macro {expression!r} (known: "
                             f"{', '.join(sorted(_MACROS))})")
        return expression.lower()
    if len(expression.split()) != 5:
        raise ValueError("cron must have 5 fields: minute hour day-of-month month day-of-week")
    if _RANDOM_FIELD.search(expression) or not croniter.is_valid(expression):
        raise ValueError(f"not a valid cron expression: {expression!r}")
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except Exception:  # croniter raises its own error classes for a date never matched
        raise ValueError(f"cron expression {expression!r} never fires") from None
    return expression


def next_expected(config: HeartbeatConfig, after: datetime) -> datetime:
    """When the next ping is due after ``after`` (aware, UTC; naive input is read as UTC).

    In cron mode the schedule is read in wall-clock time of ``config.timezone``: a run in
    the hour skipped by a spring-forward change is due when the clocks jump (as cron
    daemons run it), and a run in the hour repeated in autumn is due once, at its first
    occurrence.

    >>> config = HeartbeatConfig(cron="0 9 * * *", timezone="Europe/Warsaw")
    >>> next_expected(config, datetime(2026, 3, 28, 12, 0, tzinfo=UTC)).isoformat()
    '2026-03-29T07:00:00+00:00'
    """
    after = _aware(after)
    if config.period is not None:
        return after + config.period
    assert config.cron is not None  # the model validator guarantees one of the two
    zone = config.zone
    schedule = croniter(config.cron, after.astimezone(zone).replace(tzinfo=None))
    while True:
        due = _localize(schedule.get_next(datetime), zone)
        # A time in the repeated autumn hour can map before ``after``: look further.
        if due > after:
            return due.astimezone(UTC)


def _localize(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a wall-clock time happens in ``zone`` (fold=0: first of two)."""
    probe = wall
    for _ in range(_MAX_GAP_MINUTES):
        aware = probe.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
            return aware
        # This wall time was skipped; the first one that exists is when the clocks jumped.
        probe = probe.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return wall.replace(tzinfo=zone)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def evaluate(
    config: HeartbeatConfig,
    signals: HeartbeatSignals,
    now: datetime,
    created_at: datetime | None = None,
) -> Outcome:
    """Decide a heartbeat monitor's outcome from its recorded signals; pure and cheap.

    >>> from datetime import datetime, UTC
    >>> config = HeartbeatConfig(period="1h")
    >>> signals = HeartbeatSignals(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), None, "success")
    >>> evaluate(config, signals, datetime(2026, 1, 1, 13, 6, tzinfo=UTC)).error
    <ErrorCode.NO_HEARTBEAT: 13>
    """
    now = _aware(now)
    view = _View(signals)
    base = view.last_seen or (_aware(created_at) if created_at else None)
    due = next_expected(config, base) if base else None
    details = _details(config, view, due)
    latency = view.job_duration_ms()
    problem = view.failed() or view.hung(config.grace, now) or _late(config, view, due, now)
    if problem is not None:
        code, message = problem
        return Outcome.down(code, message, latency, **details)
    return Outcome.up(latency, **details)


class _View:
    """The signals normalised: which happened last, and when."""

    def __init__(self, signals: HeartbeatSignals) -> None:
        self.ping_at = _aware(signals.last_ping_at) if signals.last_ping_at else None
        self.start_at = _aware(signals.last_start_at) if signals.last_start_at else None
        self.kind = signals.last_ping_kind
        if self.kind == "start" and self.start_at is None:
            self.start_at = self.ping_at
        seen = [moment for moment in (self.ping_at, self.start_at) if moment is not None]
        self.last_seen = max(seen) if seen else None

    @property
    def running(self) -> bool:
        """A start with no success or fail after it."""
        if self.start_at is None:
            return False
        return self.kind == "start" or self.ping_at is None or self.start_at > self.ping_at

    def failed(self) -> tuple[ErrorCode, str] | None:
        if self.kind != "fail" or self.running or self.ping_at is None:
            return None
        return ErrorCode.HEARTBEAT_FAILED, f"the job reported failure at {_show(self.ping_at)}"

    def hung(self, grace: timedelta, now: datetime) -> tuple[ErrorCode, str] | None:
        if not self.running or self.start_at is None or now <= self.start_at + grace:
            return None
        return ErrorCode.NO_HEARTBEAT, (
            f"the job started at {_show(self.start_at)} and has not reported success or "
            f"failure within the {format_duration(grace)} grace time: it may hang"
        )

    def job_duration_ms(self) -> float | None:
        if self.kind != "success" or self.ping_at is None or self.start_at is None:
            return None
        duration = self.ping_at - self.start_at
        if not timedelta(0) <= duration <= MAX_JOB_DURATION:
            return None
        return duration.total_seconds() * 1000


def _late(
    config: HeartbeatConfig, view: _View, due: datetime | None, now: datetime
) -> tuple[ErrorCode, str] | None:
    if due is None or now <= due + config.grace:
        return None
    grace = format_duration(config.grace)
    zone = config.zone if config.cron else UTC
    since = (f"last ping at {_show(view.last_seen, zone)}" if view.last_seen
             else "never pinged since the monitor was created")
    if config.cron:
        return ErrorCode.NO_HEARTBEAT, (
            f"missed the run due at {_show(due, zone)} (cron {config.cron!r} in "
            f"{config.timezone}, grace {grace}); {since}")
    period = format_duration(config.period or timedelta())
    return ErrorCode.NO_HEARTBEAT, f"no ping within {period} plus {grace} grace; {since}"


def _details(config: HeartbeatConfig, view: _View, due: datetime | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "last_ping_at": _iso(view.ping_at),
        "last_ping_kind": view.kind,
        "last_start_at": _iso(view.start_at),
        "next_ping_due": _iso(due),
        "next_ping_late_after": _iso(due + config.grace if due else None),
    }
    duration = view.job_duration_ms()
    if duration is not None:
        details["job_duration_ms"] = round(duration, 3)
    return details


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _show(moment: datetime | None, zone: tzinfo = UTC) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else "never"


@register
class HeartbeatCheck:
    """Decides from pings the monitored job sends; see the module docstring for the rules."""

    kind: ClassVar[str] = "heartbeat"
    Config: ClassVar[type[CheckConfig]] = HeartbeatConfig
    receives_pings: ClassVar[bool] = True  # each monitor gets a push URL
    default_confirm_after: ClassVar[int] = 1  # the grace period is the confirmation

    async def run(self, config: HeartbeatConfig, ctx: CheckContext) -> Outcome:
        signals = ctx.heartbeat or HeartbeatSignals()
        return evaluate(config, signals, ctx.now, ctx.monitor_created_at)
