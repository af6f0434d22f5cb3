"""The API's routers, mounted under ``/api/v1`` by the app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from dozor.api import accounts, audit_log, incidents, maintenance, messages, monitors, problems

PREFIX = "/api/v1"


def install(app: FastAPI) -> None:
    api = APIRouter(prefix=PREFIX)
    for module in (accounts, monitors, incidents, maintenance, messages, audit_log):
        api.include_router(module.router)
    app.include_router(api)
    problems.install(app)
