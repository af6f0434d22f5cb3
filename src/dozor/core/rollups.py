"""Hourly and daily rollups of raw results, and the histogram that makes them mergeable.

Percentiles of a day cannot be computed from the percentiles of its hours, so each rollup
row also keeps a latency histogram with logarithmic buckets (each about 9% wider than the
last, so a percentile read from it is within about 4.5% of the true value). Histograms add
up exactly, which is what makes incremental maintenance and any-range queries possible.

>>> h = Histogram(); h.add(100.0); h.add(200.0)
>>> round(h.quantile(0.5), 1)  # the true median is 100: within 4.5%
102.2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

BUCKETS_PER_DOUBLING = 8
HOUR = 3600
DAY = 86400


def bucket_of(latency_ms: float) -> int:
    return int(math.log2(latency_ms + 1.0) * BUCKETS_PER_DOUBLING)


def bucket_middle(index: int) -> float:
    low = 2 ** (index / BUCKETS_PER_DOUBLING) - 1.0
    high = 2 ** ((index + 1) / BUCKETS_PER_DOUBLING) - 1.0
    return (low + high) / 2


@dataclass(slots=True)
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)

    def add(self, latency_ms: float, times: int = 1) -> None:
        index = bucket_of(latency_ms)
        self.counts[index] = self.counts.get(index, 0) + times

    def merge(self, other: Histogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count

    def quantile(self, q: float) -> float | None:
        total = sum(self.counts.values())
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_middle(index)
        raise AssertionError("unreachable: rank never exceeds total")

    def encode(self) -> str:
        """Compact text: ``index:count`` pairs, e.g. ``53:12 54:3``."""
        return " ".join(f"{i}:{c}" for i, c in sorted(self.counts.items()))

    @classmethod
    def decode(cls, text: str) -> Histogram:
        counts = {}
        for pair in text.split():
            index, count = pair.split(":")
            counts[int(index)] = int(count)
        return cls(counts)


@dataclass(slots=True)
class Rollup:
    """One period of one monitor at one location."""

    checks: int = 0
    up: int = 0
    timed: int = 0
    latency_sum: float = 0.0
    latency_min: float | None = None
    latency_max: float | None = None
    histogram: Histogram = field(default_factory=Histogram)

    def add(self, up: bool, latency_ms: float | None) -> None:
        self.checks += 1
        self.up += up
        if latency_ms is None:
            return
        self.timed += 1
        self.latency_sum += latency_ms
        self.latency_min = _either(min, self.latency_min, latency_ms)
        self.latency_max = _either(max, self.latency_max, latency_ms)
        self.histogram.add(latency_ms)

    def merge(self, other: Rollup) -> None:
        self.checks += other.checks
        self.up += other.up
        self.timed += other.timed
        self.latency_sum += other.latency_sum
        self.latency_min = _either(min, self.latency_min, other.latency_min)
        self.latency_max = _either(max, self.latency_max, other.latency_max)
        self.histogram.merge(other.histogram)

    @property
    def uptime(self) -> float | None:
        return self.up / self.checks if self.checks else None

    @property
    def latency_avg(self) -> float | None:
        return self.latency_sum / self.timed if self.timed else None


def _either(
    pick: Callable[[float, float], float], a: float | None, b: float | None
) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def combine(rollups: Iterable[Rollup]) -> Rollup:
    total = Rollup()
    for rollup in rollups:
        total.merge(rollup)
    return total

