"""A request's changes are committed before its answer starts: a client that reads
its own write at once finds it, and a commit that fails is an error, never a success."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import PUBLIC_URL, Person


async def test_a_created_contact_is_committed_when_the_answer_starts(
        app: FastAPI, owner: Person, database_url: str) -> None:
    observer = create_engine(database_url)
    seen_at_start: list[int] = []

    async def count_contacts() -> int:
        async with observer.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(n.contacts)) or 0)

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def send_watched(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen_at_start.append(await count_contacts())
            await send(message)
        await app(scope, receive, send_watched)

    try:
        before = await count_contacts()
        transport = httpx.ASGITransport(app=watching)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
            created = await http.post("/api/v1/contacts", json={"name": "Ala"},
                                      headers=owner.headers)
        assert created.status_code == 201, created.text
        assert seen_at_start == [before + 1]
    finally:
        await observer.dispose()
