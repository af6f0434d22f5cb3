"""What the probe-server tests share: a probe made as ``dozor probes add`` makes one,
and monitors assigned to locations through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from dozor.api.probes import TOKEN_PREFIX
from dozor.api.security import digest, new_token
from dozor.store import probes as store
from dozor.store import tables as t
from tests.api.seed import database


async def add_probe(database_url: str, name: str, location: str) -> str:
    """A new probe's token."""
    token = new_token(TOKEN_PREFIX)
    async with database(database_url) as connection:
        await store.create_probe(connection, name, location, digest(token), token[:12],
                                 datetime.now(UTC))
    return token


async def revoke(database_url: str, name: str) -> None:
    async with database(database_url) as connection:
        row = await store.find_probe(connection, name)
        assert row is not None
        await store.revoke_probe(connection, row.id, datetime.now(UTC))


async def location_id(database_url: str, name: str) -> int:
    async with database(database_url) as connection:
        found = await connection.scalar(select(t.locations.c.id)
                                        .where(t.locations.c.name == name))
    assert found is not None
    return int(found)


async def add_monitor(client: httpx.AsyncClient, headers: dict[str, str], name: str,
                      **fields: Any) -> int:
    body = {"name": name, "kind": "http", "url": f"https://{name}.example.com"} | fields
    if body["kind"] != "http":
        del body["url"]
    created = await client.post("/api/v1/monitors", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def result(monitor_id: int, at_ms: int, ok: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"monitor_id": monitor_id, "at_ms": at_ms, "ok": ok,
                            "latency_ms": 12.5 if ok else None}
    if not ok:
        body |= {"error": 3, "message": "connection refused"}
    return body | extra
