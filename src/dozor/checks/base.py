"""The interface every check kind implements, and the registry that maps kinds to classes.

A check kind is one module in ``dozor.checks`` with a class like::

    @register
    class TcpCheck:
        kind: ClassVar[str] = "tcp"
        Config: ClassVar[type[BaseModel]] = TcpConfig
        async def run(self, config: TcpConfig, ctx: CheckContext) -> Outcome: ...

``run`` never raises for a target's failure: it returns ``Outcome.down(...)``. The runner
still guards against a check that raises or hangs (hard timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from dozor.core.types import Outcome
from dozor.outbound import AddressPolicy, Outbound


class CheckConfig(BaseModel):
    """Base of every kind's config: unknown fields are an error, names may be kebab-case."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              alias_generator=lambda name: name.replace("_", "-"))

    def target_host(self) -> str | None:
        """The host this check talks to, for the per-host concurrency limit."""
        return None


@dataclass(slots=True)
class HeartbeatSignals:
    """What the push endpoint has recorded for a heartbeat monitor."""

    last_ping_at: datetime | None = None
    last_start_at: datetime | None = None
    last_ping_kind: str | None = None  # "success" | "fail" | "start"


@dataclass(slots=True)
class CheckContext:
    """What a check may use besides its config. Built by the runner for each run."""

    timeout: float  # seconds; the runner also enforces it from outside
    outbound: Outbound | None = None  # for checks that speak HTTP
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    monitor_created_at: datetime | None = None
    heartbeat: HeartbeatSignals | None = None

    @property
    def policy(self) -> AddressPolicy | None:
        """Which addresses the check may connect to (None: any)."""
        return self.outbound.policy if self.outbound is not None else None


class Check(Protocol):
    """A check kind. Optional class flags: ``receives_pings`` (give monitors a push URL),
    ``enforces_timeout`` (its whole run is bounded by ``ctx.timeout``: no runner timer),
    ``default_confirm_after`` (failed checks before DOWN when a monitor does not say)."""

    kind: ClassVar[str]
    Config: ClassVar[type[CheckConfig]]

    async def run(self, config: Any, ctx: CheckContext) -> Outcome: ...


_REGISTRY: dict[str, Check] = {}
C = TypeVar("C", bound=type[Any])


def register(cls: C) -> C:
    """Class decorator: make a check kind available under ``cls.kind``."""
    kind = cls.kind
    if kind in _REGISTRY:
        raise ValueError(f"check kind {kind!r} registered twice")
    _REGISTRY[kind] = cls()
    return cls


def get_check(kind: str) -> Check:
    """The check for a kind; KeyError names the known kinds."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown check kind {kind!r} (known: {known})") from None


def receives_pings(kind: str) -> bool:
    """Whether monitors of this kind get a push URL (heartbeat-style kinds say so)."""
    return bool(getattr(get_check(kind), "receives_pings", False))


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def parse_config(kind: str, data: dict[str, Any]) -> CheckConfig:
    """Validate a kind's config; raises KeyError or pydantic.ValidationError."""
    return get_check(kind).Config.model_validate(data)

