"""The web dashboard: server-rendered pages (Jinja2) with a little progressive script;
live states over server-sent events. Reading works without script."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dozor.engine.engine import Engine
from dozor.web import (
    account_page,
    contacts_page,
    delivery_page,
    incidents_page,
    maintenance_page,
    points_page,
    policies_page,
    privacy_page,
    status_page,
    team_page,
    two_factor_page,
)
from dozor.web.live import LiveStates
from dozor.web.pages import router

STATIC = Path(__file__).parent / "static"


def add_routes(app: FastAPI, engine: Engine) -> None:
    live = LiveStates()
    engine.listeners.append(live.stage)
    engine.after_commit.append(live.committed)
    engine.regional_committed.append(live.regional)
    app.state.live = live
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    app.include_router(status_page.router)
    for page in (incidents_page, maintenance_page, delivery_page, team_page, account_page,
                 two_factor_page, contacts_page, points_page, policies_page, privacy_page):
        app.include_router(page.router)
