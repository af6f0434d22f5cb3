"""``GET /metrics``: the Prometheus exposition, behind an optional bearer token.

With ``DOZOR_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``
(Prometheus: ``authorization: {credentials: ...}`` in the scrape config). Without it the
endpoint is open, as on a self-hosted installation with one organisation; once the
installation holds several organisations it is refused, because monitor names of every
organisation would be readable by anyone.

The text format is served unless the scraper asks for OpenMetrics in ``Accept``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.engine.engine import Engine
from dozor.metrics.collector import ProbeRow, Snapshot, SnapshotCollector, take_snapshot
from dozor.notify import outbox
from dozor.settings import Settings
from dozor.store import probes as probe_store
from dozor.store import tables as t


def add_routes(app: FastAPI, engine: Engine, settings: Settings) -> None:
    token = settings.metrics_token.get_secret_value()

    @app.get("/metrics", tags=["operations"], response_class=Response,
             operation_id="metrics", responses={200: {"content": {"text/plain": {}}}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: monitor states and latencies, checks and their durations
        per kind, result queue, outbox and scheduler lag (see docs/architecture.md)."""
        _check_token(request, token)  # before any database work
        now = datetime.now(UTC)
        async with engine.database.connect() as connection:
            if not token:
                await _single_organisation(connection)
            if not engine.started:
                raise Problem(503, "the engine is starting; scrape again shortly")
            depth = await outbox.depth(connection, now)
            probes = [ProbeRow(row.name, row.location, row.last_seen_at, row.last_lag_ms,
                               row.dropped, row.silent_since is not None)
                      for row in await probe_store.list_probes(connection)
                      if row.revoked_at is None]
        snapshot = replace(take_snapshot(engine, depth, now), probes=probes)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        # Encoding 10,000 monitors (70,000 samples) takes about a second of CPU: in a
        # worker thread, so the event loop keeps its turns.
        body = await asyncio.to_thread(_render, snapshot, encoder)
        return Response(body, media_type=content_type)


def _check_token(request: Request, token: str) -> None:
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise Problem(401, "send DOZOR_METRICS_TOKEN as a bearer token",
                      headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


async def _single_organisation(connection: AsyncConnection) -> None:
    """Open /metrics shows every organisation's monitor names: only with one of them."""
    organisations = await connection.scalar(select(func.count()).select_from(t.organizations))
    if (organisations or 0) > 1:
        raise Problem(403, "this installation has several organisations: set "
                      "DOZOR_METRICS_TOKEN and scrape with it as a bearer token")


def _render(snapshot: Snapshot, encoder: Callable[[Collector], bytes]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    ProcessCollector(registry=registry)  # CPU, memory, open files of this process
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return encoder(registry)
