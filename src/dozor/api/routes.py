"""The API's routers, mounted under ``/api/v1`` by the app."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from dozor.api import (
    account_email,
    account_export,
    account_privacy,
    account_retention,
    accounts,
    audit_log,
    contacts,
    incidents,
    maintenance,
    members,
    messages,
    monitors,
    password_page,
    passwords,
    plain_text,
    points,
    policies,
    problems,
    status_notes,
    status_pages,
    status_public,
    two_factor,
)

PREFIX = "/api/v1"


def install(app: FastAPI) -> None:
    api = APIRouter(prefix=PREFIX, dependencies=[Depends(plain_text.refuse_nul)])
    for module in (accounts, account_email, account_export, account_privacy, passwords,
                   two_factor, members, monitors, incidents, maintenance, contacts, points,
                   policies, messages, audit_log, status_pages, status_notes, status_public,
                   account_retention):
        api.include_router(module.router)
    app.include_router(api)
    password_page.add_routes(app)
    problems.install(app)
