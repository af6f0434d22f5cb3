"""Local stand-ins for chat webhooks (Slack, Discord, Teams) and for a contact's own
Standard Webhooks endpoint, on 127.0.0.1 at an ephemeral port.

Each speaks its provider's documented protocol: the URL shapes, the bodies it accepts,
and the error answers it gives (Slack's plain codes, Discord's ``{"message", "code"}``,
a workflow's ``{"error": {...}}``). Every request is recorded, so a test can assert on
exactly what was sent. A test can also script the next answers, which come before the
server's own logic (rate limits, outages, garbage, a server that never answers)::

    async with SlackWebhooks() as slack:
        url = slack.add_hook()
        slack.script(Reply(429, "rate_limited", headers={"Retry-After": "3"}))
        ...                                   # first send: 429, second: "ok"
        slack.requests[0].json()["blocks"]
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.servers.aiohttp_base import LocalAiohttpServer


@dataclass(slots=True)
class Reply:
    """A scripted answer, taken by the next request before the server's own logic."""

    status: int = 200
    body: str | bytes = ""
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # longer than the client's timeout: a server that never answers
    content_type: str = "text/plain"

    def response(self) -> web.Response:
        if self.json is not None:
            return web.json_response(self.json, status=self.status, headers=self.headers)
        body = self.body.encode() if isinstance(self.body, str) else self.body
        return web.Response(status=self.status, body=body, headers=self.headers,
                            content_type=self.content_type)


@dataclass(slots=True)
class Received:
    """A request the server received."""

    method: str
    path: str  # with the query string
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def text_reply(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


class RecordingServer(LocalAiohttpServer):
    """Base of the fakes: records requests, plays scripted replies, else :meth:`answer`."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        raise NotImplementedError

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._entry)

    async def _entry(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.method, request.path_qs, dict(request.query),
                            CIMultiDict(request.headers), await request.read())
        self.requests.append(received)
        if self._script:
            reply = self._script.popleft()
            await asyncio.sleep(reply.delay)
            return reply.response()
        return await self.answer(request, received)


def _json_body(received: Received) -> dict[str, Any] | None:
    if not received.headers.get("Content-Type", "").startswith("application/json"):
        return None
    try:
        body = received.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- Slack ---------------------------------------------------------------------------

# What a hook's state makes Slack answer (status, plain-text code).
SLACK_STATES = {
    "revoked": (403, "invalid_token"),
    "prohibited": (403, "action_prohibited"),
    "channel_deleted": (404, "channel_not_found"),
    "archived": (410, "channel_is_archived"),
}


def slack_rate_limited(seconds: int) -> Reply:
    return Reply(429, "rate_limited", headers={"Retry-After": str(seconds)})


class SlackWebhooks(RecordingServer):
    """Slack incoming webhooks: ``POST /services/<team>/<bot>/<secret>`` with JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, str] = {}  # path -> "active" or a key of SLACK_STATES
        self.posted: list[dict[str, Any]] = []
        self._numbers = itertools.count(1)

    def add_hook(self, state: str = "active") -> str:
        number = next(self._numbers)
        path = f"/services/T{number:08d}/B{number:08d}/{secrets.token_hex(12)}"
        self.hooks[path] = state
        return self.url(path)

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        state = self.hooks.get(request.path)
        if state is None:
            return text_reply(404, "no_service")
        if state in SLACK_STATES:
            return text_reply(*SLACK_STATES[state])
        body = _json_body(received)
        if body is None:
            return text_reply(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return text_reply(400, "no_text")
        if not _valid_blocks(body.get("blocks", [])):
            return text_reply(400, "invalid_blocks")
        self.posted.append(body)
        return web.Response(text="ok", content_type="text/html")


def _valid_blocks(blocks: Any) -> bool:
    limits = {"header": 150, "section": 3000}
    if not isinstance(blocks, list):
        return False
    for block in blocks:
        text = block.get("text", {}).get("text") if isinstance(block, dict) else None
        limit = limits.get(block.get("type")) if isinstance(block, dict) else None
        if limit is None or not isinstance(text, str) or not 0 < len(text) <= limit:
            return False
    return True


# --- Discord -------------------------------------------------------------------------

def discord_rate_limited(seconds: float) -> Reply:
    """Discord's 429: the exact wait in the body, rounded up in Retry-After."""
    return Reply(429, json={"message": "You are being rate limited.", "retry_after": seconds,
                            "global": False},
                 headers={"Retry-After": str(int(seconds) + 1), "X-RateLimit-Limit": "5",
                          "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(seconds),
                          "X-RateLimit-Scope": "shared"})


class DiscordWebhooks(RecordingServer):
    """Discord's Execute Webhook: ``POST /api/webhooks/<id>/<token>[?wait=true]``."""

    _PATH = re.compile(r"/api/webhooks/(\d+)/([\w-]+)")

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, str] = {}  # webhook id -> token
        self.posted: list[dict[str, Any]] = []
        self._snowflakes = itertools.count(1_190_000_000_000_000_001)

    def add_hook(self) -> str:
        webhook_id, token = str(next(self._snowflakes)), secrets.token_urlsafe(48)
        self.hooks[webhook_id] = token
        return self.url(f"/api/webhooks/{webhook_id}/{token}")

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        found = self._PATH.fullmatch(request.path)
        if found is None or found.group(1) not in self.hooks:
            return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        if self.hooks[found.group(1)] != found.group(2):
            return web.json_response({"message": "Invalid Webhook Token", "code": 50027},
                                     status=401)
        body = _json_body(received)
        problem = _discord_problem(body)
        if problem is not None:
            return web.json_response(problem, status=400)
        assert body is not None
        message = {"id": str(next(self._snowflakes)), "type": 0, "channel_id": "1",
                   "webhook_id": found.group(1), "content": body.get("content", ""),
                   "embeds": body.get("embeds", [])}
        self.posted.append(body)
        if request.query.get("wait") == "true":
            return web.json_response(message)
        return web.Response(status=204)


def _discord_problem(body: dict[str, Any] | None) -> dict[str, Any] | None:
    if body is None:
        return {"message": "The request body contains invalid JSON.", "code": 50109}
    if not body.get("content") and not body.get("embeds"):
        return {"message": "Cannot send an empty message", "code": 50006}
    too_long = len(body.get("content", "")) > 2000 or any(
        len(embed.get("description", "")) > 4096 for embed in body.get("embeds", []))
    if too_long:
        return {"message": "Invalid Form Body", "code": 50035,
                "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}}
    return None


# --- Teams ---------------------------------------------------------------------------

def teams_connector_error(status: int) -> Reply:
    """How a legacy Office 365 connector reports a failure: HTTP 200 and a sentence."""
    return Reply(200, "Webhook message delivery failed with error: Microsoft Teams endpoint "
                      f"returned HTTP error {status} with ContextId tcid=0,server=msgapi-weu,"
                      "cv=AAAAAAAAAAAAAAAAAAAAAA.0..")


class TeamsWebhooks(RecordingServer):
    """Teams Workflows triggers (``/workflows/<id>/triggers/manual/paths/invoke?...&sig=``,
    answering 202) and legacy connectors (``/webhookb2/...``, answering 200 ``1``)."""

    _FLOW = re.compile(r"/workflows/(\w+)/triggers/manual/paths/invoke")

    def __init__(self) -> None:
        super().__init__()
        self.flows: dict[str, str] = {}  # workflow id -> sig
        self.connectors: set[str] = set()
        self.posted: list[dict[str, Any]] = []

    def add_workflow(self) -> str:
        flow_id, sig = uuid.uuid4().hex, secrets.token_urlsafe(32)
        self.flows[flow_id] = sig
        return self.url(f"/workflows/{flow_id}/triggers/manual/paths/invoke?api-version="
                        f"2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}")

    def add_connector(self) -> str:
        path = f"/webhookb2/{uuid.uuid4()}@{uuid.uuid4()}/IncomingWebhook/{uuid.uuid4().hex}"
        self.connectors.add(path)
        return self.url(path)

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        if request.path in self.connectors:
            return self._post(received, accepted=text_reply(200, "1"))
        found = self._FLOW.fullmatch(request.path)
        if found is None or found.group(1) not in self.flows:
            return _flow_error(404, "WorkflowNotFound", "The workflow could not be found.")
        if request.query.get("sig") != self.flows[found.group(1)]:
            return _flow_error(401, "DirectApiInvalidAuthorizationSignature",
                               "The provided authorization token is not valid.")
        return self._post(received, accepted=web.Response(status=202))

    def _post(self, received: Received, accepted: web.Response) -> web.Response:
        body = _json_body(received)
        if body is None or not _is_card_message(body):
            return _flow_error(400, "TriggerInputSchemaMismatch",
                               "The input body for trigger 'manual' of type 'Request' did "
                               "not match its schema definition.")
        self.posted.append(body)
        return accepted


def _flow_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _is_card_message(body: dict[str, Any]) -> bool:
    attachments = body.get("attachments")
    if body.get("type") != "message" or not isinstance(attachments, list) or not attachments:
        return False
    return all(isinstance(item, dict)
               and item.get("contentType") == "application/vnd.microsoft.card.adaptive"
               and isinstance(item.get("content"), dict)
               and item["content"].get("type") == "AdaptiveCard" for item in attachments)


# --- a contact's Standard Webhooks endpoint ------------------------------------------

class WebhookReceiver(RecordingServer):
    """A receiver that checks Standard Webhooks signatures the way the specification
    describes (written here independently of Dozor's signer) and answers 204.
    ``/hook`` receives; ``/moved`` answers a redirect to ``/hook``."""

    def __init__(self, key: bytes | None = None, tolerance: int = 300) -> None:
        super().__init__()
        self.key = key
        self.tolerance = tolerance
        self.accepted: list[Received] = []

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        if request.path == "/moved":
            raise web.HTTPMovedPermanently("/hook")
        if request.path != "/hook":
            return text_reply(404, "not found")
        if self.key is not None and not self.signature_ok(received):
            return text_reply(401, "bad signature")
        self.accepted.append(received)
        return web.Response(status=204)

    def signature_ok(self, received: Received) -> bool:
        assert self.key is not None
        headers = received.headers
        timestamp = headers.get("webhook-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance:
            return False
        signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode()
        expected = base64.b64encode(hmac.new(self.key, signed + received.body,
                                             hashlib.sha256).digest()).decode()
        return f"v1,{expected}" in headers.get("webhook-signature", "").split(" ")
