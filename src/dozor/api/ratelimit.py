"""A sliding-window limit per key, in memory (login and token endpoints).

>>> limit = RateLimit(2, 60.0)
>>> limit.hit("ip:1", now=0.0), limit.hit("ip:1", now=1.0), limit.hit("ip:1", now=2.0)
(None, None, 58.0)
"""

from __future__ import annotations

import time
from collections import deque


class RateLimit:
    """At most ``limit`` hits per ``window`` seconds per key; memory bounded by ``keys``."""

    def __init__(self, limit: int, window: float, keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.keys = keys
        self._hits: dict[str, deque[float]] = {}

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
