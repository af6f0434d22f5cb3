"""HTTP routes of alert delivery: provider callbacks, one-click unsubscribe (RFC 8058) and
confirmation links.

Links in messages are opened by mail scanners too, so a GET never changes anything: it
shows a page with a button, and the button POSTs. Mail clients that support RFC 8058 POST
``List-Unsubscribe=One-Click`` directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from dozor.notify import consent
from dozor.notify.channels.base import CallbackRequest
from dozor.notify.service import NotifyService

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Dozor</title>
</head><body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _page(title: str, text: str, button: str | None = None, status: int = 200) -> HTMLResponse:
    form = f'<form method="post"><button type="submit">{escape(button)}</button></form>' \
        if button else ""
    return HTMLResponse(PAGE.format(title=escape(title), text=escape(text), form=form),
                        status_code=status)


def add_routes(app: FastAPI, notify: NotifyService) -> None:
    @app.api_route("/hooks/{channel_id}/{token}", methods=["GET", "POST"],
                   include_in_schema=False)
    async def provider_callback(channel_id: int, token: str, request: Request) -> Response:
        body = await request.body()
        is_form = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded")
        # Parsed here: Starlette's form parser needs python-multipart for a few lines' work.
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) \
            if is_form else {}
        reply = await notify.callback(channel_id, token, CallbackRequest(
            method=request.method, url=str(request.url), query=dict(request.query_params),
            form=form, body=body, headers={k.lower(): v for k, v in request.headers.items()}))
        if reply is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

    @app.get("/unsubscribe/{token}", include_in_schema=False)
    async def unsubscribe_page(token: str) -> HTMLResponse:
        return _page("Unsubscribe", "Stop all Dozor messages to this address?", "Unsubscribe")

    @app.post("/unsubscribe/{token}", include_in_schema=False)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        async with notify.database.begin() as connection:
            done = await consent.opt_out_by_token(
                connection, token, datetime.now(UTC), _client(request),
                request.headers.get("user-agent"))
        if not done:
            return _page("Unknown link", "This unsubscribe link is not valid.", status=404)
        return _page("Unsubscribed", "You will get no more messages at this address.")

    @app.get("/confirm/{token}", include_in_schema=False)
    async def confirm_page(token: str) -> HTMLResponse:
        return _page("Confirm", "Receive monitoring alerts from Dozor at this address?",
                     "Yes, send me alerts")

    @app.post("/confirm/{token}", include_in_schema=False)
    async def confirm(token: str, request: Request) -> HTMLResponse:
        try:
            async with notify.database.begin() as connection:
                await consent.confirm_token(connection, token, datetime.now(UTC),
                                            _client(request), request.headers.get("user-agent"))
        except consent.ConsentError:
            return _page("Link expired", "This confirmation link is unknown or expired; "
                         "ask for a new one.", status=404)
        return _page("Confirmed", "This address will receive alerts. You can opt out at any "
                     "time with the link in every message.")


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
