"""What every ``dozor`` command shares: settings, a database engine, the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.privacy import keys
from dozor.settings import Settings, SettingsError
from dozor.store.db import create_engine

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings.load()
    except SettingsError as error:
        raise click.ClickException(f"bad setting\n{error}") from None


def with_database(action: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command body with a database engine as its first argument."""
    @wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        async def body() -> T:
            settings = load_settings()
            use_keys(settings)
            database = create_engine(settings.resolved_database_url)
            try:
                await load_data_keys(database)
                return await action(database, *args, **kwargs)
            finally:
                await database.dispose()
        return run(body())
    return wrapper


def use_keys(settings: Settings) -> None:
    """Load the instance key (creating the key file on first use), or stop naming why."""
    try:
        keys.use(settings)
    except keys.KeyUnavailable as error:
        raise click.ClickException(str(error)) from None


async def load_data_keys(database: AsyncEngine) -> None:
    """Unwrap the organisations' data keys, so commands read personal fields. A database
    not migrated yet has none (the command itself says what is wrong with it)."""
    try:
        async with database.connect() as connection:
            await keys.load_data_keys(connection)
    except (OperationalError, ProgrammingError):
        pass


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def safe_url(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
