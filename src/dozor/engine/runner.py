"""Runs one check with a hard timeout, so a hung target never delays anything else.

Checks honour ``ctx.timeout`` themselves; the runner adds a short grace and then cancels,
and turns any exception a check lets through into a DOWN outcome with INTERNAL. A kind
whose whole run already sits under one ``asyncio.timeout(ctx.timeout)`` says so with
``enforces_timeout = True`` and is spared the second timer (it is the hot path).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from dozor.checks import CheckContext, get_check
from dozor.checks.base import HeartbeatSignals
from dozor.core.types import ErrorCode, Outcome
from dozor.engine.model import ActiveMonitor
from dozor.outbound import Outbound

log = logging.getLogger(__name__)
GRACE = 1.0  # seconds past the check's own timeout before it is cancelled


class Runner:
    def __init__(self, outbound: Outbound) -> None:
        self.outbound = outbound

    async def run(
        self, monitor: ActiveMonitor, signals: HeartbeatSignals | None = None
    ) -> Outcome:
        check = get_check(monitor.kind)
        ctx = CheckContext(
            timeout=monitor.timeout, outbound=self.outbound, now=datetime.now(UTC),
            monitor_created_at=monitor.created_at, heartbeat=signals,
        )
        try:
            if getattr(check, "enforces_timeout", False):
                return await check.run(monitor.config, ctx)
            async with asyncio.timeout(monitor.timeout + GRACE):
                return await check.run(monitor.config, ctx)
        except TimeoutError:
            return Outcome.down(ErrorCode.TIMEOUT, f"no result within {monitor.timeout:g}s")
        except Exception as error:  # a bug in a check must not stop monitoring
            log.exception("check %s of monitor %s raised", monitor.kind, monitor.id)
            return Outcome.down(ErrorCode.INTERNAL, f"check failed: {type(error).__name__}")
