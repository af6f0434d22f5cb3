"""A monitor as the engine holds it in memory: parsed once, small, ready to run."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dozor.checks import CheckConfig, get_check, receives_pings
from dozor.core.quorum import needed
from dozor.core.statemachine import Policy
from dozor.engine.scheduler import Job


@dataclass(slots=True, eq=False)
class ActiveMonitor:
    id: int
    org_id: int
    name: str
    kind: str
    config: CheckConfig
    tags: frozenset[str]
    interval: float  # seconds
    retry_interval: float
    timeout: float
    policy: Policy
    paused: bool  # by its owner, or because its organisation restricted processing
    revision: int
    created_at: datetime
    push_token: str | None
    job: Job
    restricted: bool = False  # its organisation froze processing (privacy.restriction)
    last_latency_ms: float | None = None  # of the latest check, for /metrics
    locations: tuple[str, ...] = ()  # where it is checked from; empty: here only
    # Locations that must see it down to confirm an outage (core.quorum); None: no
    # locations given, decided by its own state machine as ever.
    quorum: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> ActiveMonitor:
        """Build from a ``monitors`` row; raises if the stored config no longer validates."""
        config = get_check(row.kind).Config.model_validate(row.config)
        restricted = bool(getattr(row, "restricted", False))
        # A probe builds its monitors from what /probe/v1/monitors sends, without these.
        locations = tuple(getattr(row, "locations", None) or ())
        rule = getattr(row, "confirm_locations", None)
        return cls(
            id=row.id, org_id=row.org_id, name=row.name, kind=row.kind, config=config,
            tags=frozenset(row.tags), interval=row.interval_ms / 1000,
            retry_interval=row.retry_interval_ms / 1000, timeout=row.timeout_ms / 1000,
            policy=_policy(row.confirm_after, row.recover_after),
            paused=row.paused or restricted, revision=row.revision, created_at=row.created_at,
            push_token=row.push_token if receives_pings(row.kind) else None,
            job=Job(monitor_id=row.id, host=config.target_host()), restricted=restricted,
            locations=locations,
            # Any monitor with locations is judged by them, one location included: a
            # monitor checked by a single probe must still open incidents here.
            quorum=needed(rule, len(locations)) if locations else None,
        )


@functools.lru_cache(maxsize=256)
def _policy(confirm_after: int, recover_after: int) -> Policy:
    # Shared: ten thousand monitors have a handful of distinct policies between them.
    return Policy(confirm_after=confirm_after, recover_after=recover_after)
