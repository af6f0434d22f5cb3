"""Counters of checks per kind, kept where they cost least: on the check path.

The check path is the engine's hot loop (thousands of checks a second on one core), so a
check adds only a few integer and float operations here: no lock, no label lookup, no
object. prometheus_client's own Counter and Histogram take a lock and resolve labels on
every call; these plain counters are read by the /metrics collector at scrape time
instead (``dozor.metrics``), on the event loop's thread, so nothing races.

>>> stats = CheckStats()
>>> stats.record("http", True, 0.030)
>>> stats.record("http", False, 12.0)
>>> kind = stats.kinds["http"]
>>> kind.checks, kind.failures, kind.buckets[BOUNDS.index(0.05)], kind.buckets[-1]
(2, 1, 1, 0)
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds (seconds, inclusive, as Prometheus's ``le``) of the check duration
# histogram: from a LAN answer to a check that ran into its timeout (10 s by default,
# 60 s at most for most kinds).
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(slots=True)
class KindStats:
    """What the checks of one kind did since the process started."""

    checks: int = 0
    failures: int = 0
    seconds: float = 0.0  # summed durations
    # Per bucket (not cumulative): observations in (BOUNDS[i-1], BOUNDS[i]]; the last
    # one counts those above every bound.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus wants them: (le, observations <= le), +Inf last."""
        total, pairs = 0, []
        for bound, count in zip((*map(str, BOUNDS), "+Inf"), self.buckets, strict=True):
            total += count
            pairs.append((bound, total))
        return pairs


class CheckStats:
    def __init__(self) -> None:
        self.kinds: dict[str, KindStats] = {}

    def record(self, kind: str, ok: bool, seconds: float) -> None:
        """One finished check: O(1) (a dict lookup, a bisect of 13 bounds, four adds)."""
        stats = self.kinds.get(kind)
        if stats is None:
            stats = self.kinds[kind] = KindStats()
        stats.checks += 1
        if not ok:
            stats.failures += 1
        stats.seconds += seconds
        stats.buckets[bisect_left(BOUNDS, seconds)] += 1
