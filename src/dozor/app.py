"""Composition root: builds every part from Settings and serves them over HTTP.

Routes here are the ones the monitoring core needs: a health check and the heartbeat
push endpoints (``/ping/<token>``, ``/ping/<token>/fail``, ``/ping/<token>/start``),
which take no authentication and do constant work per request (``engine.pings``);
``/metrics`` is in ``dozor.metrics``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from dozor import __version__, web
from dozor.api import ratelimit
from dozor.api import routes as api_routes
from dozor.api.problems import Problem
from dozor.checks import get_check
from dozor.checks.domain import DomainCheck
from dozor.engine.engine import Engine
from dozor.engine.pings import PingNotStored
from dozor.metrics import web as metrics_web
from dozor.notify import web as notify_web
from dozor.notify.service import NotifyService
from dozor.privacy import keys
from dozor.privacy.service import PrivacyService
from dozor.settings import Settings
from dozor.store.db import create_engine

SIGNALS = {"fail": "fail", "start": "start", "success": "success"}


def configure_checks(settings: Settings) -> None:
    """Give check kinds the settings they need (the registry holds one instance per kind)."""
    domain = get_check("domain")
    assert isinstance(domain, DomainCheck)
    domain.bootstrap_url = settings.rdap_bootstrap_url


def create_app(settings: Settings) -> FastAPI:
    configure_checks(settings)
    keys.use(settings)
    database = create_engine(settings.resolved_database_url)
    engine = Engine(settings, database)
    notify = NotifyService(settings, database)
    notify.attach(engine)
    privacy = PrivacyService(database, settings.retention_interval)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = await keys.watch(database)
        await notify.start()
        await engine.start()
        await privacy.start()
        try:
            yield
        finally:
            await privacy.stop()
            await keys.stop_watching(watcher)
            await engine.stop()  # flushes the last state changes into the outbox
            await notify.stop()
            await database.dispose()

    app = FastAPI(title="Dozor", version=__version__, lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.notify = notify
    app.state.database = database
    app.state.limits = ratelimit.limits_for(database)  # shared on PostgreSQL
    app.state.settings = settings
    _add_routes(app, engine)
    metrics_web.add_routes(app, engine, settings)
    notify_web.add_routes(app, notify)
    api_routes.install(app)
    web.add_routes(app, engine)
    return app


def _add_routes(app: FastAPI, engine: Engine) -> None:
    @app.get("/healthz")
    async def health() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "monitors": len(engine.monitors),
                "queued_results": engine.queued_results}

    async def ping(token: str, signal: str = "success") -> PlainTextResponse:
        kind = SIGNALS.get(signal)
        if kind is None:
            raise HTTPException(404, "unknown signal: use /fail, /start or none")
        try:
            known = await engine.record_ping(token, kind)
        except PingNotStored:
            raise Problem(503, "the ping could not be stored; send it again",
                          headers={"Retry-After": "1"}) from None
        if not known:
            raise HTTPException(404, "no heartbeat monitor has this URL")
        return PlainTextResponse("OK")

    for path, name in (("/ping/{token}", "ping"), ("/ping/{token}/{signal}", "ping_signal")):
        for method in ("GET", "POST", "HEAD"):  # one operation each: OpenAPI ids are unique
            app.add_api_route(path, ping, methods=[method], tags=["heartbeat"],
                              operation_id=f"{name}_{method.lower()}",
                              response_class=PlainTextResponse)
