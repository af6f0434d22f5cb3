"""A local Telegram Bot API for one bot: ``sendMessage`` and ``setWebhook``, and the
delivery of updates to the webhook it was given.

It answers as the real API does (https://core.telegram.org/bots/api): ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"}``; a
malformed token in the path is 404 Not Found, a wrong one 401 Unauthorized. Chats are
set up by a test, each in a state::

    async with TelegramBotApi() as api:
        api.add_chat(42)                      # a user who pressed Start
        api.add_chat(43, "blocked")           # 403 Forbidden: bot was blocked by the user
        api.script(telegram_flood(7))         # the next call: 429, retry after 7 seconds

Texts in HTML parse mode are parsed like Telegram does (supported tags only, ``<`` and
``&`` escaped, 4096 characters at most once parsed), so bad escaping is refused with
400 "can't parse entities". One liberty: ``setWebhook`` accepts http:// URLs, so updates
can reach a plain local test server (Telegram itself demands HTTPS).
"""

from __future__ import annotations

import html
import itertools
import re
import time
from typing import Any

import aiohttp
from aiohttp import web

from tests.servers.chat_webhooks import Received, RecordingServer, Reply

SUPPORTED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
                            "span", "tg-spoiler", "a", "code", "pre", "blockquote",
                            "tg-emoji"})
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_PATH = re.compile(r"/bot([^/]*)/(\w+)")
_TOKEN = re.compile(r"\d+:[\w-]{10,}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

# What sending to a chat in each state answers, besides "active".
CHAT_STATES: dict[str, tuple[int, str, dict[str, Any]]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user", {}),
    "deactivated": (403, "Forbidden: user is deactivated", {}),
    "kicked": (403, "Forbidden: bot was kicked from the group chat", {}),
    "migrated": (400, "Bad Request: group chat was upgraded to a supergroup chat",
                 {"migrate_to_chat_id": -1001234567890}),
}


def telegram_error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, json=body)


def telegram_flood(seconds: int) -> Reply:
    return telegram_error(429, f"Too Many Requests: retry after {seconds}",
                          retry_after=seconds)


def visible_text(markup: str) -> str:
    """The text Telegram shows for HTML-mode ``markup``; ValueError as Telegram words it."""
    out: list[str] = []
    open_tags: list[str] = []
    at = 0
    while at < len(markup):
        char = markup[at]
        if char == "<":
            at = _tag(markup, at, open_tags)
        elif char == "&":
            entity = _ENTITY.match(markup, at)
            if entity is None:
                raise ValueError(f"Character '&' is reserved and must be escaped "
                                 f"(byte offset {at})")
            out.append(html.unescape(entity.group()))
            at = entity.end()
        else:
            out.append(char)
            at += 1
    if open_tags:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def _tag(markup: str, at: int, open_tags: list[str]) -> int:
    end = markup.find(">", at)
    if end < 0:
        raise ValueError(f"Unclosed start tag at byte offset {at}")
    inside = markup[at + 1:end]
    name = inside.lstrip("/").split(" ", 1)[0].lower()
    if name not in SUPPORTED_TAGS:
        raise ValueError(f'Unsupported start tag "{name}" at byte offset {at}')
    if not inside.startswith("/"):
        open_tags.append(name)
    elif not open_tags or open_tags.pop() != name:
        raise ValueError(f'Unmatched end tag at byte offset {at}')
    return end + 1


class TelegramBotApi(RecordingServer):
    """The Bot API for the bot ``token``; records every call and the messages sent."""

    def __init__(self, token: str = "123456789:AAE-test_Token-0123456789") -> None:
        super().__init__()
        self.token = token
        self.chats: dict[int | str, str] = {}  # chat id -> "active" or a CHAT_STATES key
        self.sent: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self._message_ids = itertools.count(1)

    def add_chat(self, chat_id: int | str, state: str = "active") -> None:
        self.chats[chat_id] = state

    def calls(self, method: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("?")[0].endswith(f"/{method}")]

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        found = _PATH.fullmatch(request.path)
        if found is None or not _TOKEN.fullmatch(found.group(1)):
            return _error(404, "Not Found")
        if found.group(1) != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request, received)
        if found.group(2) == "sendMessage":
            return self._send_message(params)
        if found.group(2) == "setWebhook":
            return self._set_webhook(params)
        return _error(404, "Not Found: method not found")

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        try:
            shown = visible_text(text) if params.get("parse_mode") == "HTML" else text
        except ValueError as error:
            return _error(400, f"Bad Request: can't parse entities: {error}")
        if len(shown.encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        state = self.chats.get(_chat_key(chat_id))
        if state is None:
            return _error(400, "Bad Request: chat not found")
        if state in CHAT_STATES:
            return _error(*CHAT_STATES[state])
        message = {"message_id": next(self._message_ids), "date": int(time.time()),
                   "chat": {"id": _chat_key(chat_id), "type": "private"}, "text": shown}
        self.sent.append(params)
        return web.json_response({"ok": True, "result": message})

    def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url = params.get("url") or ""
        if url and not url.startswith(("https://", "http://")):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided "
                               "for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = params if url else None
        return web.json_response({"ok": True, "result": True,
                                  "description": "Webhook was set" if url
                                  else "Webhook was deleted"})

    async def deliver(self, update: dict[str, Any]) -> int:
        """POST an update to the registered webhook, as Telegram does; its HTTP status."""
        assert self.webhook is not None, "no webhook set"
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
        async with aiohttp.ClientSession() as session, session.post(
                self.webhook["url"], json=update, headers=headers) as response:
            return response.status


def _error(code: int, description: str, parameters: dict[str, Any] | None = None,
           ) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


async def _params(request: web.Request, received: Received) -> dict[str, Any]:
    """Bot API parameters come as JSON, as a form, or in the query string."""
    if request.content_type == "application/json":
        try:
            body = received.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(await request.post())
    return dict(request.query)


def _chat_key(chat_id: Any) -> int | str:
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


# --- updates, as Telegram sends them to a webhook ----------------------------------

_update_ids = itertools.count(100_000_001)


def private_message(chat_id: int, text: str, date: int = 1_700_000_000) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ala", "language_code": "pl"}
    return {"update_id": next(_update_ids), "message": {
        "message_id": 17, "from": user, "date": date, "text": text,
        "chat": {"id": chat_id, "first_name": "Ala", "type": "private"},
        **({"entities": [{"offset": 0, "length": len(text.split()[0]),
                          "type": "bot_command"}]} if text.startswith("/") else {}),
    }}


def group_message(chat_id: int, text: str) -> dict[str, Any]:
    update = private_message(-chat_id, text)
    update["message"]["chat"] = {"id": chat_id, "title": "Ops", "type": "supergroup"}
    return update


def member_update(chat_id: int, new_status: str, chat_type: str = "private",
                  date: int = 1_700_000_000) -> dict[str, Any]:
    """``my_chat_member``: the bot's own status in a chat changed (a block is "kicked")."""
    bot = {"id": 123456789, "is_bot": True, "first_name": "Dozor", "username": "dozor_bot"}
    old_status = "member" if new_status in ("kicked", "left") else "kicked"
    chat = {"id": chat_id, "type": chat_type}
    return {"update_id": next(_update_ids), "my_chat_member": {
        "chat": chat, "from": {"id": abs(chat_id), "is_bot": False, "first_name": "Ala"},
        "date": date,
        "old_chat_member": {"user": bot, "status": old_status},
        "new_chat_member": {"user": bot, "status": new_status,
                            **({"until_date": 0} if new_status == "kicked" else {})},
    }}
