"""A local Twilio Messages API, answering and calling back as Twilio does.

::

    async with FakeTwilio() as twilio:
        ...  # point TwilioConfig.api_base at twilio.url()
        sent = twilio.sent[-1]
        await twilio.status(sent.sid, "delivered")      # signed POST to its StatusCallback
        await twilio.inbound(url, "+48600100200", "STOP")  # signed POST of a received SMS

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth answers 201
and the Message resource, or Twilio's error body ``{"code", "message", "more_info",
"status"}``: 20003 (401) for wrong credentials, 21604/21211 for a missing or invalid
'To', 21610 for a number in ``unsubscribed``, 21603 for no sender, 21606 for a 'From'
that is not one of ``numbers``, 21602 for an empty body. Every callback carries
``X-Twilio-Signature`` computed over the URL called and the sorted POST parameters.
Rate limits and outages are queued answers (see :func:`error`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web

from dozor.notify.sms_parts import count_parts
from tests.servers.smsfake import Answer, FakeProvider

ACCOUNT_SID = "AC" + "1f" * 16
AUTH_TOKEN = "9d5e2c4b8a7f6e5d4c3b2a1f0e9d8c7b"
E164 = re.compile(r"\+[1-9]\d{6,14}")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """A Twilio REST error, as a queued answer."""
    body = {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return Answer(status, json.dumps(body), content_type="application/json",
                  headers=headers or {})


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """As Twilio documents it: the URL, then each POST parameter sorted, name and value."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
                            .digest()).decode()


@dataclass(slots=True)
class Sent:
    sid: str
    to: str
    sender: str | None
    service: str | None
    body: str
    status_callback: str | None
    segments: int


class FakeTwilio(FakeProvider):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = {"+15005550006"}  # numbers the account owns
        self.unsubscribed: set[str] = set()  # recipients who replied STOP
        self.sent: list[Sent] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)

    async def _create(self, request: web.Request) -> web.Response:
        form = self.requests[-1].form
        if not self._authorised(request):
            return error(401, 20003, "Authenticate").response()
        refusal = self._check(form)
        if refusal is not None:
            return refusal.response()
        sent = Sent(sid="SM" + f"{len(self.sent) + 1:032x}", to=form["To"],
                    sender=form.get("From"), service=form.get("MessagingServiceSid"),
                    body=form["Body"], status_callback=form.get("StatusCallback"),
                    segments=count_parts(form["Body"]).parts)
        self.sent.append(sent)
        return web.json_response(self._resource(sent), status=201)

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (request.match_info["sid"] == self.account_sid
                and request.headers.get("Authorization") == f"Basic {expected}")

    def _check(self, form: dict[str, str]) -> Answer | None:
        to = form.get("To")
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not E164.fullmatch(to):
            return error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if to in self.unsubscribed:
            return error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error(400, 21603, "A 'From' phone number is required.")
        if form.get("From") and form["From"] not in self.numbers:
            return error(400, 21606, f"The From phone number {form['From']} is not a valid, "
                                     "SMS-capable inbound phone number or short code for "
                                     "your account.")
        if not form.get("Body"):
            return error(400, 21602, "Message body is required.")
        return None

    def _resource(self, sent: Sent) -> dict[str, object]:
        return {
            "sid": sent.sid, "account_sid": self.account_sid, "to": sent.to,
            "from": sent.sender, "messaging_service_sid": sent.service, "body": sent.body,
            "status": "accepted" if sent.service else "queued",
            "num_segments": str(sent.segments), "num_media": "0",
            "direction": "outbound-api", "api_version": "2010-04-01", "price": None,
            "price_unit": "USD", "error_code": None, "error_message": None,
            "date_created": formatdate(usegmt=True), "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}.json",
        }

    async def status(self, sid: str, status: str, error_code: str | None = None,
                     url: str | None = None, token: str | None = None) -> tuple[int, str]:
        """POST a status callback for a sent message to its StatusCallback (or ``url``),
        signed with the auth token (or ``token``, to forge one)."""
        sent = next(s for s in self.sent if s.sid == sid)
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid,
                  "From": sent.sender or "+15005550006", "To": sent.to,
                  "MessageStatus": status, "SmsStatus": status, "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        target = url or sent.status_callback
        assert target, "the message was sent without a StatusCallback"
        return await self._signed(target, params, token)

    async def inbound(self, url: str, sender: str, body: str,
                      opt_out_type: str | None = None) -> tuple[int, str]:
        """POST an incoming SMS to the number's "A message comes in" webhook."""
        sid = "SM" + f"{len(self.sent) + 1000:032x}"
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                  "AccountSid": self.account_sid, "From": sender, "To": "+15005550006",
                  "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
                  "ApiVersion": "2010-04-01", "FromCountry": "PL", "ToCountry": "US"}
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        return await self._signed(url, params, None)

    async def _signed(self, url: str, params: dict[str, str],
                      token: str | None) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": signature(token or self.auth_token, url, params),
                   "I-Twilio-Idempotency-Token": params["MessageSid"]}
        return await self.call("POST", url, form=params, headers=headers)
