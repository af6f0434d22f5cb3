"""What routes share: the database, the principal, the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.api import subaccounts
from dozor.api.problems import Problem
from dozor.api.security import Principal, authenticate
from dozor.settings import Settings
from dozor.store.db import write_transaction


def database(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.database
    return engine


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One transaction per request: all of a request's changes commit, or none (unless
    the error is a :class:`Problem` that asks to keep them). Declared with
    ``scope="function"`` (``Connection``): the commit runs when the route returns, before
    the answer is sent, so a client never sees a success whose commit then fails, nor
    reads its own write missing (FastAPI's default exits after sending)."""
    async with write_transaction(database(request)) as conn:
        try:
            yield conn
        except Problem as problem:
            if problem.commit:
                await conn.commit()
            raise


Connection = Annotated[AsyncConnection, Depends(connection, scope="function")]


async def principal(request: Request, conn: Connection) -> Principal:
    caller = await authenticate(conn, request)
    subaccounts.check_path(caller, request.url.path)  # fail closed for sub-accounts
    return caller


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An object's id.")]
"""A path id: out of range is a 422 naming it, never a database error."""
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only those of this id.")]
"""A query parameter that filters a list by an object's id, bounded as ``Id`` is."""

Caller = Annotated[Principal, Depends(principal)]
AppSettings = Annotated[Settings, Depends(settings)]
