"""A fake Meta Graph API: Messenger's Send API and the WhatsApp Cloud API, on loopback.

- ``POST /{version}/me/messages`` (Messenger) with the Page token as a bearer token or
  ``access_token`` parameter: a known PSID and a valid body get ``{"recipient_id",
  "message_id"}``; an unknown PSID 100/2018001, ``MESSAGE_TAG`` without a valid tag 100.
- ``POST /{version}/{phone_number_id}/messages`` (WhatsApp) with the system user's token:
  a template message naming an approved template (name, language, number of body
  parameters) gets ``{"messaging_product", "contacts", "messages": [{"id": "wamid..."}]}``;
  an unknown template 132001, a wrong parameter count 132000, a parameter with a
  newline 100, free-form text 131047 (outside the 24-hour window), an unknown phone
  number id 100/33.
- A wrong token gets 190. Errors are HTTP 400 with Graph's ``{"error": {...}}`` body.

:func:`hub_request` builds the webhook call Meta would make, signed with the app secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from dozor.notify.channels.base import CallbackRequest
from tests.servers.chat_provider import ProviderServer, signed_request

MESSENGER_TAGS = {"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE",
                  "HUMAN_AGENT"}


class FakeGraph(ProviderServer):
    def __init__(self, *, version: str = "v25.0", page_token: str = "page-token",
                 whatsapp_token: str = "wa-token", phone_number_id: str = "106540352242922",
                 psids: set[str] | None = None,
                 templates: dict[tuple[str, str], int] | None = None) -> None:
        super().__init__()
        self.version = version
        self.page_token = page_token
        self.whatsapp_token = whatsapp_token
        self.phone_number_id = phone_number_id
        self.psids = psids or set()
        self.templates = templates or {}  # (name, language) -> number of body parameters

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/{self.version}/me/messages", self._messenger),
                web.post(f"/{self.version}/{{sender}}/messages", self._whatsapp)]

    async def _messenger(self, request: web.Request) -> web.Response:
        body, problem = await _checked(request, self.page_token)
        if problem is not None:
            return problem
        psid = _dict(body.get("recipient")).get("id")
        text = _dict(body.get("message")).get("text")
        kind, tag = body.get("messaging_type"), body.get("tag")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG") or not isinstance(text, str):
            return graph_error(100, "(#100) Invalid parameter")
        if kind == "MESSAGE_TAG" and tag not in MESSENGER_TAGS:
            return graph_error(100, "(#100) Param tag must be one of " + ", ".join(MESSENGER_TAGS))
        if len(text) > 2000:
            return graph_error(100, "(#100) Length of param message[text] must be less than "
                                    "or equal to 2000")
        if psid not in self.psids:
            return graph_error(100, "(#100) No matching user found", subcode=2018001)
        return web.json_response({"recipient_id": psid, "message_id": f"m_{self.next_id()}"})

    async def _whatsapp(self, request: web.Request) -> web.Response:
        if request.match_info["sender"] != self.phone_number_id:
            return graph_error(100, "Unsupported post request. Object with ID "
                               f"'{request.match_info['sender']}' does not exist", subcode=33)
        body, problem = await _checked(request, self.whatsapp_token)
        if problem is not None:
            return problem
        if body.get("messaging_product") != "whatsapp" or not isinstance(body.get("to"), str):
            return graph_error(100, "(#100) Invalid parameter")
        if body.get("type") != "template":
            return graph_error(131047, "Re-engagement message", details="Message failed to "
                               "send because more than 24 hours have passed since the "
                               "customer last replied to this number.")
        problem = self._template_problem(_dict(body.get("template")))
        if problem is not None:
            return problem
        wamid = f"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI{self.next_id()}"
        return web.json_response({
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        })

    def _template_problem(self, template: dict[str, Any]) -> web.Response | None:
        name, language = template.get("name"), _dict(template.get("language")).get("code")
        expected = self.templates.get((str(name), str(language)))
        if expected is None:
            return graph_error(132001, "(#132001) Template name does not exist in the "
                               "translation", details=f"template name ({name}) does not "
                               f"exist in {language}")
        params = [p for c in template.get("components", []) if c.get("type") == "body"
                  for p in c.get("parameters", [])]
        if len(params) != expected:
            return graph_error(132000, "(#132000) Number of parameters does not match the "
                               "expected number of params")
        if any(_unsendable(p.get("text")) for p in params):
            return graph_error(100, "(#100) Invalid parameter", details="Param text cannot "
                               "have new-line/tab characters or more than 4 consecutive spaces")
        return None


def graph_error(code: int, message: str, *, subcode: int | None = None,
                details: str | None = None, status: int = 400) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return web.json_response({"error": error}, status=status)


def hub_request(payload: Any, app_secret: str) -> CallbackRequest:
    """A webhook POST as Meta makes it: ``X-Hub-Signature-256: sha256=<hex>``."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return signed_request(body, {"X-Hub-Signature-256": f"sha256={digest}"})


async def _checked(request: web.Request, token: str) -> tuple[dict[str, Any], web.Response | None]:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if request.query.get("access_token", given) != token:
        return {}, graph_error(190, "Invalid OAuth access token - Cannot parse access token")
    try:
        body = await request.json()
    except ValueError:
        return {}, graph_error(100, "(#100) Invalid JSON")
    return (body, None) if isinstance(body, dict) else ({}, graph_error(100, "Invalid JSON"))


def _unsendable(text: Any) -> bool:
    return not isinstance(text, str) or not text or "\n" in text or "\t" in text \
        or "     " in text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
