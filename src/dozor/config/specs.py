"""What a person writes to describe a monitor or a maintenance window, validated.

The same specs serve YAML files, the command line and (later) the API. A monitor is a
flat mapping, as in Gatus: the common keys below plus the keys of its kind's config::

    name: Homepage
    kind: http
    url: https://example.com
    interval: 1m
    conditions: ["[STATUS] == 200"]

Every problem is reported as a :class:`Problem` with the path of the field, so a YAML
loader can point at the line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from dozor.checks import CheckConfig, get_check, receives_pings
from dozor.core.durations import format_duration
from dozor.validation import Duration, Label, LocationName

Path = tuple[str | int, ...]
MAX_LOCATIONS = 16


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.path)
        return f"{where}: {self.message}" if where else self.message


class SpecError(Exception):
    """One or more problems in what a person wrote; nothing has been applied."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              alias_generator=lambda name: name.replace("_", "-"))


class MonitorFields(_Spec):
    """The keys every monitor has, whatever its kind."""

    name: Label = Field(min_length=1, max_length=200)
    kind: str
    interval: Duration = timedelta(seconds=60)
    retry_interval: Duration | None = None
    timeout: Duration | None = None
    confirm_after: int | None = Field(None, ge=1, le=50)  # None: the kind's default
    recover_after: int = Field(1, ge=1, le=50)
    tags: list[Annotated[Label, Field(min_length=1, max_length=64)]] = []
    paused: bool = False
    # Where it is checked from (a server's `location` setting, a probe's location);
    # None: the server's own location only.
    locations: list[LocationName] | None = Field(None, min_length=1, max_length=MAX_LOCATIONS)
    # How many of them confirm an outage (core.quorum); None: a majority.
    confirm_locations: Annotated[int, Field(strict=True)] | Literal["all"] | None = None

    @model_validator(mode="after")
    def _timings_fit(self) -> MonitorFields:
        if self.interval < timedelta(seconds=1) or self.interval > timedelta(days=7):
            raise ValueError("interval must be between 1s and 7d")
        if self.retry_interval is not None and not (
            timedelta(seconds=1) <= self.retry_interval <= self.interval
        ):
            raise ValueError("retry-interval must be between 1s and the interval")
        if self.timeout is not None and not (
            timedelta(milliseconds=100) <= self.timeout <= self.interval
        ):
            raise ValueError("timeout must be between 100ms and the interval")
        return self

    @field_validator("locations")
    @classmethod
    def _each_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("name each location once")
        return value


def default_retry_interval(interval: timedelta) -> timedelta:
    # A shorter retry confirms an outage sooner: a third of the interval, at least 5s.
    return min(max(timedelta(seconds=5), interval / 3), interval)


def default_confirm_after(kind: str) -> int:
    """Failed checks in a row before DOWN: 3, unless the kind knows better (a heartbeat's
    grace period already is its confirmation)."""
    return int(getattr(get_check(kind), "default_confirm_after", 3))


def default_timeout(interval: timedelta) -> timedelta:
    return min(timedelta(seconds=10), interval * 0.8)


COMMON_KEYS = frozenset(
    alias for name, field in MonitorFields.model_fields.items()
    for alias in (field.alias or name, name)
)


@dataclass(frozen=True)
class MonitorSpec:
    fields: MonitorFields
    config: CheckConfig

    @property
    def name(self) -> str:
        return self.fields.name

    @property
    def retry_interval(self) -> timedelta:
        return self.fields.retry_interval or default_retry_interval(self.fields.interval)

    @property
    def timeout(self) -> timedelta:
        return self.fields.timeout or default_timeout(self.fields.interval)

    @property
    def confirm_after(self) -> int:
        return self.fields.confirm_after or default_confirm_after(self.fields.kind)

    def row_values(self) -> dict[str, Any]:
        """Column values for the monitors table (without ids and timestamps)."""
        return {
            "name": self.fields.name,
            "kind": self.fields.kind,
            "config": to_plain(self.config.model_dump(by_alias=True, exclude_defaults=True)),
            "interval_ms": _ms(self.fields.interval),
            "retry_interval_ms": _ms(self.retry_interval),
            "timeout_ms": _ms(self.timeout),
            "confirm_after": self.confirm_after,
            "recover_after": self.fields.recover_after,
            "tags": sorted(set(self.fields.tags)),
            "paused": self.fields.paused,
            "locations": sorted(self.fields.locations) if self.fields.locations else None,
            "confirm_locations": self.fields.confirm_locations,
        }


def parse_monitor(data: object) -> MonitorSpec:
    """Validate one monitor mapping; raise SpecError naming every bad field."""
    if not isinstance(data, dict):
        raise SpecError([Problem((), "a monitor must be a mapping of keys to values")])
    common = {k: v for k, v in data.items() if k in COMMON_KEYS}
    rest = {k: v for k, v in data.items() if k not in COMMON_KEYS}
    problems: list[Problem] = []
    fields = _validate(MonitorFields, common, problems)
    kind = data.get("kind")
    config = None
    if isinstance(kind, str):
        try:
            config_class = get_check(kind).Config
        except KeyError as error:
            problems.append(Problem(("kind",), str(error.args[0])))
        else:
            config = _validate(config_class, rest, problems)
            if fields is not None and fields.locations and receives_pings(kind):
                problems.append(Problem(("locations",), "a heartbeat monitor is pushed to, "
                                        "not checked from locations"))
    if fields is not None:
        problems.extend(_quorum_problems(fields))
    if problems or fields is None or config is None:
        raise SpecError(problems or [Problem((), "invalid monitor")])
    return MonitorSpec(fields, config)


def _quorum_problems(fields: MonitorFields) -> list[Problem]:
    """confirm-locations needs two locations or more, and at most as many as there are.

    >>> _quorum_problems(MonitorFields(name="n", kind="http", locations=["a"],
    ...                                confirm_locations="all"))[0].message
    'needs locations: with 2 or more locations'
    """
    rule, count = fields.confirm_locations, len(fields.locations or ())
    if rule is None:
        return []
    where = ("confirm-locations",)
    if count < 2:
        return [Problem(where, "needs locations: with 2 or more locations")]
    if rule != "all" and not 1 <= rule <= count:
        return [Problem(where, f"must be between 1 and the number of locations ({count}), "
                        "or all")]
    return []


def spec_from_row(row: Any) -> MonitorSpec:
    """Rebuild the spec of a stored monitor (for export and comparison)."""
    fields = MonitorFields(
        name=row.name, kind=row.kind, interval=timedelta(milliseconds=row.interval_ms),
        retry_interval=timedelta(milliseconds=row.retry_interval_ms),
        timeout=timedelta(milliseconds=row.timeout_ms), confirm_after=row.confirm_after,
        recover_after=row.recover_after, tags=list(row.tags), paused=row.paused,
        locations=list(row.locations) if row.locations else None,
        confirm_locations=row.confirm_locations,
    )
    return MonitorSpec(fields, get_check(row.kind).Config.model_validate(row.config))


def spec_to_mapping(spec: MonitorSpec) -> dict[str, Any]:
    """The shortest mapping that parse_monitor reads back as the same monitor."""
    fields = spec.fields
    out: dict[str, Any] = {"name": fields.name, "kind": fields.kind}
    out.update(spec.row_values()["config"])
    out["interval"] = format_duration(fields.interval)
    if spec.retry_interval != default_retry_interval(fields.interval):
        out["retry-interval"] = format_duration(spec.retry_interval)
    if spec.timeout != default_timeout(fields.interval):
        out["timeout"] = format_duration(spec.timeout)
    if spec.confirm_after != default_confirm_after(fields.kind):
        out["confirm-after"] = spec.confirm_after
    if fields.recover_after != 1:
        out["recover-after"] = fields.recover_after
    if fields.tags:
        out["tags"] = sorted(set(fields.tags))
    if fields.paused:
        out["paused"] = True
    if fields.locations:
        out["locations"] = sorted(fields.locations)
    if fields.confirm_locations is not None:
        out["confirm-locations"] = fields.confirm_locations
    return out


class MaintenanceSpec(_Spec):
    """A one-off window (start, end) or a recurring one (cron, duration), in a time zone."""

    name: Label = Field(min_length=1, max_length=200)
    start: datetime | None = None
    end: datetime | None = None
    cron: str | None = None
    duration: Duration | None = None
    timezone: str = "UTC"
    monitors: list[Label] = []
    tags: list[Label] = []
    all_monitors: bool = False

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceSpec:
        # Messages start with the field at fault ("end: ..."): parse_maintenance moves
        # that prefix into the problem's path, so the API and the YAML loader name it.
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        one_off = self.start is not None or self.end is not None
        if one_off == (self.cron is not None):
            raise ValueError("give either start and end, or cron and duration")
        if one_off:
            if self.start is None or self.end is None:
                missing = "start" if self.start is None else "end"
                raise ValueError(f"{missing}: a one-off window needs both start and end")
            start = _in_range(self.start, zone, "start")
            if _in_range(self.end, zone, "end") <= start:
                raise ValueError("end: must be after start")
        else:
            if not croniter.is_valid(self.cron or "") or not _fires(self.cron or "", zone):
                raise ValueError(f"cron: not a valid cron expression: {self.cron!r}")
            if self.duration is None or self.duration <= timedelta(0):
                raise ValueError("duration: a recurring window needs a positive duration")
            if self.duration > LONGEST_RECURRING:
                raise ValueError("duration: a recurring window lasts at most 366d")
        if not (self.monitors or self.tags or self.all_monitors):
            raise ValueError("monitors: name the monitors, tags, or set all-monitors: true")
        return self

    def bounds_utc(self) -> tuple[datetime | None, datetime | None]:
        """A one-off window's start and end in UTC; (None, None) for a recurring one."""
        if self.start is None or self.end is None:
            return None, None
        zone = ZoneInfo(self.timezone)
        return _zoned(self.start, zone), _zoned(self.end, zone)


MAINTENANCE_KEYS = frozenset(
    alias for name, field in MaintenanceSpec.model_fields.items()
    for alias in (field.alias or name, name)
)


def parse_maintenance(data: object) -> MaintenanceSpec:
    """Validate one maintenance window mapping; raise SpecError naming every bad field.

    >>> parse_maintenance({"name": "n", "cron": "0 3 * * *", "duration": "1h",
    ...                    "all-monitors": True}).duration
    datetime.timedelta(seconds=3600)
    """
    if not isinstance(data, dict):
        raise SpecError([Problem((), "a maintenance window must be a mapping of keys to values")])
    problems: list[Problem] = []
    window = _validate(MaintenanceSpec, data, problems)
    if window is None:
        raise SpecError([_field_first(p) for p in problems])
    return window


def _field_first(problem: Problem) -> Problem:
    # A whole-window check says which field it blames as "field: message".
    field, _, message = problem.message.partition(": ")
    if problem.path or field not in MAINTENANCE_KEYS or not message:
        return problem
    return Problem((field,), message)


def maintenance_from_row(row: Any) -> MaintenanceSpec:
    """Rebuild the spec of a stored window (for export, the API and comparison). A one-off
    window's times are shown in its own time zone, with the offset, so they read as written
    and mean the same instant."""
    mapping: dict[str, Any] = {"name": row.name, "timezone": row.timezone,
                               "monitors": list(row.monitor_names), "tags": list(row.tags),
                               "all-monitors": row.all_monitors}
    if row.cron:
        mapping |= {"cron": row.cron, "duration": timedelta(milliseconds=row.duration_ms)}
    else:
        zone = ZoneInfo(row.timezone)
        mapping |= {"start": row.starts_at.astimezone(zone), "end": row.ends_at.astimezone(zone)}
    return MaintenanceSpec.model_validate(mapping)


def maintenance_to_mapping(spec: MaintenanceSpec) -> dict[str, Any]:
    """The shortest mapping that parse_maintenance reads back as the same window."""
    mapping: dict[str, Any] = to_plain(spec.model_dump(by_alias=True, exclude_defaults=True))
    return mapping


LONGEST_RECURRING = timedelta(days=366)


def _in_range(moment: datetime, zone: ZoneInfo, field: str) -> datetime:
    try:
        return _zoned(moment, zone)
    except OverflowError:  # in year 1 or 9999, the zone's offset leaves the calendar
        raise ValueError(f"{field}: out of range") from None


def _fires(cron: str, zone: ZoneInfo) -> bool:
    """Whether a valid expression ever matches a date ("0 0 30 2 *" never does)."""
    try:
        croniter(cron, datetime.now(zone)).get_prev(datetime)
        croniter(cron, datetime.now(zone)).get_next(datetime)
    except (CroniterBadDateError, ValueError):
        return False
    return True


def _zoned(moment: datetime, zone: ZoneInfo) -> datetime:
    # A time written without an offset means wall time in the window's time zone.
    local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
    return local.astimezone(UTC)


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: dict[str, Any], problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            message = item["msg"].removeprefix("Value error, ")
            problems.append(Problem(tuple(item["loc"]), message))
        return None


def _ms(value: timedelta) -> int:
    return round(value.total_seconds() * 1000)


def to_plain(value: Any) -> Any:
    """Config values as plain YAML/JSON data that the Config model reads back.

    Secrets are revealed here on purpose: this is what is stored and exported.
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, BaseModel):
        return to_plain(value.model_dump(by_alias=True, exclude_defaults=True))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
