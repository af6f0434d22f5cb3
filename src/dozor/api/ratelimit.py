"""A sliding-window limit per key, in memory (log-in, tokens, password reset, invitations).

>>> limit = RateLimit(2, 60.0)
>>> limit.hit("ip:1", now=0.0), limit.hit("ip:1", now=1.0), limit.hit("ip:1", now=2.0)
(None, None, 58.0)

Routes call :func:`enforce`, which answers 429 with ``Retry-After``. The limits are per
process: with several API processes each allows the limit, which still bounds guessing.
"""

from __future__ import annotations

import time
import weakref
from collections import deque

from dozor.api.problems import Problem

_ALL: weakref.WeakSet[RateLimit] = weakref.WeakSet()


class RateLimit:
    """At most ``limit`` hits per ``window`` seconds per key; memory bounded by ``keys``."""

    def __init__(self, limit: int, window: float, keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.keys = keys
        self._hits: dict[str, deque[float]] = {}
        _ALL.add(self)

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count a hit; None if allowed, else the seconds until one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        if len(self._hits) > self.keys:  # forget the stalest keys, never grow unbounded
            for stale in [k for k, v in self._hits.items() if not v][: self.keys // 10]:
                del self._hits[stale]
        return None

    def clear(self) -> None:
        self._hits.clear()


def enforce(*checks: tuple[RateLimit, str],
            detail: str = "too many requests; try again later") -> None:
    """Count a hit on each (limit, key); raise 429 with Retry-After at the first refusal.

    >>> enforce((RateLimit(1, 60.0), "user:1"))  # the first hit is allowed
    """
    for limit, key in checks:
        if (wait := limit.hit(key)) is not None:
            raise Problem(429, detail, headers={"Retry-After": str(int(wait) + 1)})


def clear_all() -> None:
    """Forget every hit of every limit (tests start each case afresh)."""
    for limit in list(_ALL):
        limit.clear()
