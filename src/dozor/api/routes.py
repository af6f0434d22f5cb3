"""The API's routers, mounted under ``/api/v1`` by the app."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from dozor import __version__
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
    probes,
    problems,
    status_notes,
    status_pages,
    status_public,
    two_factor,
)

PREFIX = "/api/v1"
SWAGGER = "/static/swagger"


def install(app: FastAPI) -> None:
    api = APIRouter(prefix=PREFIX, dependencies=[Depends(plain_text.refuse_nul)])
    for module in (accounts, account_email, account_export, account_privacy, passwords,
                   two_factor, members, monitors, incidents, maintenance, contacts, points,
                   policies, messages, audit_log, status_pages, status_notes, status_public,
                   account_retention):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(probes.router)  # /probe/v1: probe tokens only, no user's
    password_page.add_routes(app)

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI, from our own static files: the docs work offline and load nothing
        from elsewhere (swagger-ui-dist 5, which reads OpenAPI 3.1; see static/swagger)."""
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json", title="Dozor API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js?v={__version__}",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css?v={__version__}",
            swagger_favicon_url="data:,")
    problems.install(app)
