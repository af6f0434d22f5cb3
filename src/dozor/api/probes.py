"""The server's side of remote probes, under ``/probe/v1`` (outside the user API).

A probe (``dozor probe``) shows its own bearer token (``dzp_...``, made by
``dozor probes add``); user tokens and sessions are not accepted here, nor probe tokens
on ``/api/v1``.

- ``GET /probe/v1/monitors``: the monitors assigned to the probe's location, as the
  probe builds them (``engine.model.ActiveMonitor.from_row`` reads these fields), with
  ``ETag: "<configuration revision>"``; ``If-None-Match`` with it answers 304.
- ``POST /probe/v1/results``: ``{"results": [ProbeResult, ...], "dropped": n,
  "version": "..."}``, at most 5,000 results. They are stored under the probe's location
  in one transaction; one already stored (same monitor, time and location) is not stored
  again, so a resent batch is harmless. Results of monitors not assigned to the location
  (or deleted, or of an organisation that restricted processing) are skipped, and so are
  results too old for their hour to be rolled up again (``late_hours.oldest_accepted_ms``:
  about the raw-results retention window). A stored result of an hour already rolled up
  is recorded for the rollup job in the same transaction (``store.late_hours``). The
  answer counts each: ``{"stored": n, "duplicates": d, "skipped": s}``. Each result of a
  monitor with two locations or more is then handed, oldest first, to the engine running
  in this process (``app.state.engine``), which decides the monitor's state from its
  locations (``Engine.evaluate_remote``, ``core.quorum``); one older than the last
  evaluated from that location (resent, or delivered late) is stored, not evaluated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.deps import Connection
from dozor.api.problems import Problem, invalid, invalid_input
from dozor.api.security import bearer_token, digest
from dozor.core.maintenance import Window, in_maintenance
from dozor.engine import relay
from dozor.engine.engine import Engine
from dozor.engine.evaluator import result_status
from dozor.engine.ingest import record_latest_checks, result_row
from dozor.probe.wire import ProbeResult
from dozor.store import late_hours
from dozor.store import monitors as store
from dozor.store import probes as probe_store
from dozor.store import tables as t
from dozor.store.upsert import insert_missing_rows

PREFIX = "/probe/v1"
TOKEN_PREFIX = "dzp_"
MAX_RESULTS = 5_000
MAX_BYTES = 32 * 1024 * 1024  # 5,000 failures with their details fit many times over
MAX_AT_MS = 2**53  # beyond this no clock is right (and PostgreSQL's bigint ends)
MAX_LATENCY_MS = 2**31 - 1

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, tags=["probes"], include_in_schema=False)


class Delivery(BaseModel):
    """A batch of results, as ``probe.sender`` posts it."""

    model_config = ConfigDict(extra="forbid")
    results: list[ProbeResult] = Field(max_length=MAX_RESULTS)
    dropped: int = Field(ge=0, le=2**62, description="results the probe's buffer dropped")
    version: str | None = Field(None, max_length=64)


async def probe(request: Request, conn: Connection) -> Row[Any]:
    """The probe a request comes from; 401 for anything but a live probe token."""
    token = bearer_token(request)
    found = None
    if token and token.startswith(TOKEN_PREFIX):
        found = await probe_store.probe_by_token_hash(conn, digest(token))
    if found is None:
        raise Problem(401, "send a probe's token: Authorization: Bearer dzp_..."
                      if not token else "the probe token is unknown or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return found


Probe = Annotated[Row[Any], Depends(probe)]


@router.get("/monitors")
async def assigned(request: Request, response: Response, caller: Probe,
                   conn: Connection) -> Any:
    """The monitors this probe's location checks (none paused, no heartbeats)."""
    now = datetime.now(UTC)
    await probe_store.record_contact(conn, caller.id, now)
    revision = await store.current_revision(conn)
    tag = f'"{revision}"'
    if tag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers={"ETag": tag})
    rows = await probe_store.assigned_monitors(conn, caller.location)
    response.headers["ETag"] = tag
    return {"location": caller.location, "revision": revision,
            "monitors": [_monitor(row) for row in rows]}


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def _monitor(row: Any) -> dict[str, Any]:
    return {"id": row.id, "org_id": row.org_id, "name": row.name, "kind": row.kind,
            "config": row.config, "interval_ms": row.interval_ms,
            "retry_interval_ms": row.retry_interval_ms, "timeout_ms": row.timeout_ms,
            "confirm_after": row.confirm_after, "recover_after": row.recover_after,
            "tags": list(row.tags), "paused": False, "revision": row.revision,
            "created_at": row.created_at.isoformat(), "push_token": None}


@router.post("/results")
async def results(request: Request, caller: Probe, conn: Connection) -> dict[str, int]:
    """Store a batch of results under the probe's location (see the module's text)."""
    delivery = _parse(await _body(request))
    now = datetime.now(UTC)
    targets = await _targets(conn, caller.location, {r.monitor_id for r in delivery.results})
    oldest = late_hours.oldest_accepted_ms(now, request.app.state.settings.retention_raw)
    accepted = [r for r in delivery.results if r.monitor_id in targets and r.at_ms >= oldest]
    if too_old := sum(1 for r in delivery.results if r.at_ms < oldest):
        log.warning("probe %s: %d results older than the raw-results retention window "
                    "were skipped", caller.name, too_old)
    windows = await _windows(conn, {row.org_id for row in targets.values()})
    rows, checks = [], []
    for result in accepted:
        monitor, at, outcome = targets[result.monitor_id], result.at, result.outcome()
        inside = in_maintenance(windows.get(monitor.org_id, ()), monitor.name, monitor.tags, at)
        rows.append(result_row(monitor.id, result.at_ms, caller.location_id,
                               result_status(result.ok, inside), outcome))
        checks.append((monitor.id, at, outcome))
    stored = await insert_missing_rows(conn, t.results, rows)  # (monitor, at, location)
    await late_hours.mark(conn, stored, datetime.now(UTC))
    await record_latest_checks(conn, checks)
    await probe_store.record_contact(conn, caller.id, now, **_report(delivery, now))
    elsewhere = _evaluate(request.app.state.engine, caller.location, accepted)
    if elsewhere:  # their monitors' states are another server node's to decide
        await relay.send_results(conn, caller.location, elsewhere)
    return {"stored": len(stored), "duplicates": len(rows) - len(stored),
            "skipped": len(delivery.results) - len(rows)}


def _evaluate(engine: Engine, location: str, results: Sequence[ProbeResult]
              ) -> list[ProbeResult]:
    """Hand the stored results to the engine, oldest first (see the module's text);
    return the ones another server node holds the monitors of (``engine.relay``)."""
    elsewhere = []
    for result in sorted(results, key=lambda r: r.at_ms):
        if engine.held_elsewhere(result.monitor_id):
            elsewhere.append(result)
            continue
        engine.evaluate_remote(result.monitor_id, location, result.outcome(), result.at)
    return elsewhere


async def _body(request: Request) -> bytes:
    """The body, refused (413) past MAX_BYTES before it is all read."""
    if int(request.headers.get("content-length") or 0) > MAX_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> Problem:
    return Problem(413, f"results: send at most {MAX_RESULTS} results, "
                   f"{MAX_BYTES // 2**20} MiB a request",
                   errors=[{"field": "results", "message": "too large a request"}])


def _parse(body: bytes) -> Delivery:
    """The batch, or a 422 naming every bad field (JSON proper: no NaN or Infinity)."""
    try:
        delivery = Delivery.model_validate_json(body)
    except ValidationError as error:
        raise invalid_input(error.errors()) from None
    problems = []
    for i, result in enumerate(delivery.results):
        if result.at_ms >= MAX_AT_MS:
            problems.append((f"results.{i}.at_ms", "not a time (epoch milliseconds)"))
        if result.latency_ms is not None and result.latency_ms > MAX_LATENCY_MS:
            problems.append((f"results.{i}.latency_ms", f"at most {MAX_LATENCY_MS}"))
        if not all(math.isfinite(v) for v in result.phases.values()):
            problems.append((f"results.{i}.phases", "numbers must be finite"))
    if problems:
        raise invalid(problems)
    return delivery


async def _targets(conn: AsyncConnection, location: str, ids: set[int]
                   ) -> dict[int, Any]:
    """Of these monitors, those whose results from ``location`` are stored: assigned to
    it, and of an organisation that has not restricted processing."""
    if not ids:
        return {}
    rows = await probe_store.assigned_monitors(conn, location, runnable=False, among=ids)
    return {row.id: row for row in rows if not row.restricted}


async def _windows(conn: AsyncConnection, orgs: set[int]) -> dict[int, list[Window]]:
    """These organisations' maintenance windows: results inside one are stored as
    maintenance, as the server's own are."""
    if not orgs:
        return {}
    table = t.maintenance_windows
    found: dict[int, list[Window]] = {}
    for row in (await conn.execute(select(table).where(table.c.org_id.in_(orgs)))).all():
        found.setdefault(row.org_id, []).append(store.window_from_row(row))
    return found


def _report(delivery: Delivery, now: datetime) -> dict[str, Any]:
    report: dict[str, Any] = {"dropped": delivery.dropped}
    if delivery.version is not None:
        report["last_version"] = delivery.version
    newest = _newest(delivery.results)
    if newest is not None:
        report |= {"last_result_at": datetime.fromtimestamp(newest / 1000, UTC),
                   "last_lag_ms": int(now.timestamp() * 1000) - newest}
    return report


def _newest(results: Sequence[ProbeResult]) -> int | None:
    return max((r.at_ms for r in results), default=None)
