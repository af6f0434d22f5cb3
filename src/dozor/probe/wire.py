"""What a probe sends its server: one measured result, as JSON. The server checks it
(``ProbeResult`` is a pydantic model, so a bad field is named) and evaluates it as it would
its own, under the probe's location.

    >>> r = ProbeResult(monitor_id=7, at_ms=1_764_547_200_000, ok=False, error=3,
    ...                 message="connection refused")
    >>> ProbeResult.model_validate_json(r.model_dump_json()) == r
    True
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dozor.core.types import ErrorCode, Outcome

MAX_TEXT = 2_000  # characters of a message: enough to say why, never a response body


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    monitor_id: int = Field(ge=1, le=2**31 - 1)
    at_ms: int = Field(ge=0, description="when the check started, epoch milliseconds UTC")
    ok: bool
    latency_ms: float | None = Field(None, ge=0)
    error: int | None = Field(None, ge=0, le=32_767, description="core.types.ErrorCode")
    message: str | None = Field(None, max_length=MAX_TEXT)
    phases: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, monitor_id: int, at_ms: int, outcome: Outcome) -> ProbeResult:
        return cls(monitor_id=monitor_id, at_ms=at_ms, ok=outcome.ok,
                   latency_ms=outcome.latency_ms,
                   error=int(outcome.error) if outcome.error is not None else None,
                   message=(outcome.message or "")[:MAX_TEXT] or None,
                   phases=outcome.phases, details=outcome.details)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, UTC)

    def outcome(self) -> Outcome:
        error = ErrorCode(self.error) if self.error is not None else None
        return Outcome(ok=self.ok, latency_ms=self.latency_ms, error=error,
                       message=self.message, phases=dict(self.phases),
                       details=dict(self.details))
