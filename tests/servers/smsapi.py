"""A local SMSAPI: ``POST /sms.do`` with an OAuth bearer token, answering as SMSAPI does.

::

    async with FakeSmsapi(token="t0k3n") as smsapi:
        ...  # point SmsapiConfig.api_base at smsapi.url()
        sent = smsapi.sent[-1]                           # what was accepted
        await smsapi.report(sent.id, "DELIVERED")        # GET to the message's notify_url
        await smsapi.inbound(url, "48600100200", "STOP")  # POST of a received SMS

Refusals are HTTP 200 with ``{"error": N, "message": ...}``, as SMSAPI answers: 101 for a
wrong token, 13 for a number it cannot send to (anything not 9-15 digits, or in
``blocked``), 103 when ``points`` runs out, 11 for an empty message. ``idx`` with
``check_idx=1`` is honoured: a second send with a used idx gets error 53 and sends nothing.
Rate limits and outages are queued answers (:meth:`FakeProvider.queue`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from dozor.notify.sms_parts import count_parts
from tests.servers.smsfake import Answer, FakeProvider

STATUS_CODES = {
    "NOT_FOUND": 401, "EXPIRED": 402, "SENT": 403, "DELIVERED": 404, "UNDELIVERED": 405,
    "FAILED": 406, "REJECTED": 407, "UNKNOWN": 408, "QUEUE": 409, "ACCEPTED": 410,
    "RENEWAL": 411, "STOP": 412,
}
PRICE_PER_PART = Decimal("0.16")


def error(code: int, message: str, status: int = 200) -> Answer:
    """An SMSAPI refusal, as a queued answer."""
    return Answer(status, json.dumps({"error": code, "message": message}),
                  content_type="application/json")


@dataclass(slots=True)
class Sent:
    id: str
    to: str
    text: str
    sender: str | None
    idx: str | None
    notify_url: str | None
    parts: int
    points: Decimal


class FakeSmsapi(FakeProvider):
    def __init__(self, token: str = "t0k3n", points: Decimal = Decimal("100")) -> None:
        super().__init__()
        self.token = token
        self.points = points
        self.blocked: set[str] = set()  # numbers SMSAPI refuses (landline, blacklist)
        self.sent: list[Sent] = []
        self.username = "dozor@example.com"
        self._idx: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/sms.do", self._sms_do)

    async def _sms_do(self, request: web.Request) -> web.Response:
        form = self.requests[-1].form
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return error(101, "Authorization failed", status=401).response()
        refusal = self._check(form)
        if refusal is not None:
            return refusal.response()
        sent = self._accept(form)
        return web.json_response(self._answer(sent, form))

    def _check(self, form: dict[str, str]) -> Answer | None:
        to = form.get("to", "")
        if not form.get("message"):
            return error(11, "Message too long or there is no message")
        if not (to.isdigit() and 9 <= len(to) <= 15) or to in self.blocked:
            return error(13, "No correct phone numbers")
        if form.get("check_idx") == "1" and form.get("idx") in self._idx:
            return error(53, "Not unique idx parameter, message with the same idx has been "
                             "already sent and check_idx=1")
        if self.points < count_parts(form["message"]).parts * PRICE_PER_PART:
            return error(103, "Insufficient credits on your account")
        return None

    def _accept(self, form: dict[str, str]) -> Sent:
        parts = count_parts(form["message"]).parts
        sent = Sent(id=f"{len(self.sent) + 1:024X}", to=form["to"], text=form["message"],
                    sender=form.get("from"), idx=form.get("idx"),
                    notify_url=form.get("notify_url"), parts=parts,
                    points=parts * PRICE_PER_PART)
        if form.get("idx"):
            self._idx.add(form["idx"])
        if form.get("test") != "1":  # test mode checks everything and sends nothing
            self.points -= sent.points
            self.sent.append(sent)
        return sent

    def _answer(self, sent: Sent, form: dict[str, str]) -> dict[str, Any]:
        item = {"id": sent.id, "points": float(sent.points), "number": sent.to,
                "date_sent": int(time.time()), "submitted_number": sent.to,
                "status": "QUEUE", "error": None, "idx": sent.idx}
        answer: dict[str, Any] = {"count": 1, "list": [item]}
        if form.get("details") == "1":
            item.update(parts=sent.parts, message=sent.text)
            answer.update(message=sent.text, length=len(sent.text), parts=sent.parts)
        return answer

    async def report(self, message_id: str, status_name: str = "DELIVERED",
                     url: str | None = None) -> tuple[int, str]:
        """Send a delivery report for an accepted message to its notify_url (or ``url``)."""
        sent = next(s for s in self.sent if s.id == message_id)
        target = url or sent.notify_url
        assert target, "the message was sent without notify_url"
        params = {"MsgId": sent.id, "status": str(STATUS_CODES[status_name]),
                  "status_name": status_name, "idx": sent.idx or "",
                  "donedate": str(int(time.time())), "username": self.username,
                  "points": str(sent.points), "to": sent.to, "from": sent.sender or "Test"}
        return await self.call("GET", _with_query(target, params))

    async def inbound(self, url: str, sender: str, text: str, to: str = "48500000000",
                      at: int | None = None) -> tuple[int, str]:
        """POST a received SMS to the callback set in the customer panel."""
        form = {"sms_to": to, "sms_from": sender, "sms_text": text,
                "sms_date": str(at if at is not None else int(time.time())),
                "username": self.username, "MsgId": f"{len(self.sent) + 1000:024X}"}
        return await self.call("POST", url, form=form)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
