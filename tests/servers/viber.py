"""A fake Viber REST Bot API, speaking the documented protocol on loopback.

``POST /pa/send_message`` and ``POST /pa/set_webhook`` with ``X-Viber-Auth-Token``;
every answer is HTTP 200 with a JSON ``status``: 0 and a ``message_token`` when sent,
2 for a wrong token, 3 for a malformed body, 10 before a webhook is set, 6 for a
receiver that is not subscribed to the bot. :meth:`FakeViber.callback` builds a webhook
call signed the way Viber signs it::

    async with FakeViber(token="t0ken", subscribers={"01234567890A="}) as viber:
        config = {"auth-token": "t0ken", "sender-name": "Dozor", "api-base": viber.url("/pa")}
        ...
        request = viber.callback({"event": "delivered", "message_token": 5, ...})
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from dozor.notify.channels.base import CallbackRequest
from tests.servers.chat_provider import ProviderServer, signed_request


class FakeViber(ProviderServer):
    def __init__(self, token: str, subscribers: set[str] | None = None,
                 webhook: str | None = "https://dozor.example/notify/callback/1") -> None:
        super().__init__()
        self.token = token
        self.subscribers = subscribers or set()
        self.webhook = webhook
        self.sent: dict[int, dict[str, Any]] = {}  # message_token -> the request body

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/pa/send_message", self._send_message),
                web.post("/pa/set_webhook", self._set_webhook)]

    def callback(self, event: dict[str, Any] | bytes, key: str | None = None) -> CallbackRequest:
        """A webhook call carrying ``event`` (or raw bytes), signed with ``key`` (default:
        the token)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        signature = hmac.new((key or self.token).encode(), body, hashlib.sha256).hexdigest()
        return signed_request(body, {"X-Viber-Content-Signature": signature})

    async def _send_message(self, request: web.Request) -> web.Response:
        body, problem = await self._checked(request)
        if problem is not None:
            return problem
        sender = body.get("sender")
        if (not isinstance(body.get("receiver"), str) or body.get("type") != "text"
                or not body.get("text") or not isinstance(sender, dict)
                or not sender.get("name")):
            return _status(3, "badData")
        if self.webhook is None:
            return _status(10, "webhookNotSet")
        if body["receiver"] not in self.subscribers:
            return _status(6, "notSubscribed")
        token = 5741311803571721000 + self.next_id()  # Viber's tokens are 64-bit numbers
        self.sent[token] = body
        return web.json_response({"status": 0, "status_message": "ok",
                                  "message_token": token, "chat_hostname": "SN-CHAT-05_"})

    async def _set_webhook(self, request: web.Request) -> web.Response:
        body, problem = await self._checked(request)
        if problem is not None:
            return problem
        if not isinstance(body.get("url"), str) or not body["url"].startswith("https://"):
            return _status(1, "invalidUrl")
        self.webhook = body["url"]
        return web.json_response({"status": 0, "status_message": "ok",
                                  "event_types": body.get("event_types", [])})

    async def _checked(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        if request.headers.get("X-Viber-Auth-Token") != self.token:
            return {}, _status(2, "invalidAuthToken")
        try:
            body = await request.json()
        except ValueError:
            return {}, _status(3, "badData")
        if not isinstance(body, dict):
            return {}, _status(3, "badData")
        return body, None


def _status(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "status_message": message})
