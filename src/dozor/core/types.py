"""The words every part of Dozor shares: what a check found, and what a monitor is in.

Pure data, no I/O. A check produces an :class:`Outcome`; the evaluator folds outcomes
into a :class:`MonitorState`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class MonitorState(enum.StrEnum):
    UNKNOWN = "unknown"          # created, not checked yet
    UP = "up"
    PENDING = "pending"          # failing, not yet confirmed
    DOWN = "down"                # confirmed down: an incident is open
    PAUSED = "paused"            # stopped by a person
    MAINTENANCE = "maintenance"  # inside a maintenance window: checked, never alerted


class ResultStatus(enum.IntEnum):
    """Stored in one small integer per raw result."""

    DOWN = 0
    UP = 1
    MAINTENANCE = 2  # measured inside a maintenance window: excluded from uptime


class ErrorCode(enum.IntEnum):
    """Why a check failed, as one small integer per raw result (details are optional)."""

    TIMEOUT = 1
    DNS = 2
    CONNECTION_REFUSED = 3
    CONNECTION = 4
    TLS = 5
    HTTP_STATUS = 6
    KEYWORD = 7
    ASSERTION = 8
    TOO_SLOW = 9
    PROTOCOL = 10
    CERTIFICATE_EXPIRING = 11
    DOMAIN_EXPIRING = 12
    NO_HEARTBEAT = 13
    HEARTBEAT_FAILED = 14
    PACKET_LOSS = 15
    UNEXPECTED_ANSWER = 16
    CERTIFICATE_INVALID = 17
    CONFIGURATION = 18  # this installation cannot run the check as configured
    BLOCKED = 19  # the target's address is one this server may not connect to (SSRF guard)
    INTERNAL = 99


PHASES = ("dns", "connect", "tls", "first_byte", "total")
"""Timing phases in milliseconds, in the order they happen; a check fills those it has."""


@dataclass(slots=True)
class Outcome:
    """What one run of one check found.

    >>> Outcome.up(12.5).ok
    True
    """

    ok: bool
    latency_ms: float | None = None
    error: ErrorCode | None = None
    message: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def up(cls, latency_ms: float | None = None, **details: Any) -> Outcome:
        return cls(ok=True, latency_ms=latency_ms, details=details)

    @classmethod
    def down(
        cls, error: ErrorCode, message: str, latency_ms: float | None = None, **details: Any
    ) -> Outcome:
        return cls(ok=False, latency_ms=latency_ms, error=error, message=message, details=details)
