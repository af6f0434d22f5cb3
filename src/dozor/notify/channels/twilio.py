"""Twilio Programmable Messaging: SMS through the REST API's Messages resource.

Quirks worth knowing:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP basic auth
  with the account SID and auth token. Accepted is 201 with the Message resource: ``sid``,
  ``status`` ("queued", or "accepted" through a messaging service), ``num_segments`` as a
  string and ``price`` (negative, and usually null until the message went out).
- Refusals are 4xx with ``{"code": 21211, "message": ..., "more_info": ...}``; the code
  tells a bad recipient from a bad account. 429 (code 20429) was never processed and is
  safe to retry.
- The Messages API takes no idempotency key, so nothing can make a retry after a lost
  answer safe; a 2xx we cannot read counts as accepted (without an id) rather than
  risking a second SMS.
- 21610: the recipient replied STOP to this sender and Twilio blocks it until START. The
  send fails for good and says so; no OptOut comes from it, as the STOP itself reached
  (or reaches) us as an inbound message.
- Status callbacks (``StatusCallback`` is our callback URL) and inbound webhooks (set the
  number's or messaging service's "A message comes in" to the same URL, HTTP POST) are
  signed: ``X-Twilio-Signature`` is base64 HMAC-SHA1, keyed with the auth token, of the URL
  Twilio called followed by every POST parameter, sorted, as name then value. Behind a
  proxy the URL we see differs from the one Twilio called, so the configured callback URL
  is tried too, each with and without the default port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from pydantic import AnyHttpUrl, Field, SecretStr, model_validator

from dozor.notify.channels.base import (
    CallbackReply,
    CallbackRequest,
    ChannelConfig,
    ChannelContext,
    ChannelEvent,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
    Message,
    OptOut,
    Receipt,
    register,
)
from dozor.notify.points import AddressError, normalise_address
from dozor.notify.sms_parts import count_parts
from dozor.outbound import describe_error


class TwilioConfig(ChannelConfig):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr
    from_number: str | None = None  # a Twilio number (E.164), short code or sender id
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    api_base: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")

    @model_validator(mode="after")
    def _has_a_sender(self) -> Self:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from-number or messaging-service-sid")
        return self


UNSUBSCRIBED = 21610
RECIPIENT_ERRORS = {
    21211: "the 'To' number is not a valid phone number",
    21214: "the 'To' number cannot be reached",
    UNSUBSCRIBED: "the recipient replied STOP to this sender; Twilio blocks messages to "
                  "them until they reply START",
    21612: "the 'To' number cannot be reached by SMS from this sender",
    21614: "the 'To' number is not a mobile number",
}
TRANSIENT_ERRORS = {
    20429: "too many concurrent requests",
    21611: "the sender's queue of messages is full",
}
ACCOUNT_ERRORS = {
    20003: "the account SID or auth token is wrong",
    20404: "the account or resource does not exist",
    21408: "SMS to this region is not enabled on the account",
    21606: "the 'From' number cannot send SMS to this destination",
    21608: "a trial account can only send to verified numbers",
}

ReportStatus = Literal["delivered", "failed", "accepted"]
REPORT_STATUS: dict[str, ReportStatus] = {
    "delivered": "delivered", "read": "delivered",
    "undelivered": "failed", "failed": "failed", "canceled": "failed",
    "sent": "accepted",
}  # queued, accepted, sending, scheduled: nothing new, no event
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@register
class TwilioChannel:
    """Sends SMS through Twilio and reads its signed status and inbound-message webhooks.

    >>> from dozor.outbound import Outbound
    >>> config = TwilioConfig(account_sid="AC" + "0" * 32, auth_token="t0k3n",
    ...                       from_number="+15005550006")
    >>> channel = TwilioChannel(config, ChannelContext(Outbound("dozor")))
    >>> channel.form(Message(1, "msg-1", "down", "Down", "api is down"),
    ...              ContactPoint(1, "sms", "+48600100200"))
    {'To': '+48600100200', 'Body': 'api is down', 'From': '+15005550006'}
    """

    kind: ClassVar[str] = "twilio"
    point_kind: ClassVar[str] = "sms"
    Config: ClassVar[type[ChannelConfig]] = TwilioConfig

    def __init__(self, config: TwilioConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context
        base = str(config.api_base).rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"

    def form(self, message: Message, point: ContactPoint) -> dict[str, str]:
        """The fields of the Messages request for one message."""
        form = {"To": point.address, "Body": message.text}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        if self.config.from_number:
            form["From"] = self.config.from_number
        if self.context.callback_url:
            form["StatusCallback"] = self.context.callback_url
        return form

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        status, body, headers = await self._post(self.form(message, point))
        answer = _json(body)
        if 200 <= status < 300:
            # Status callbacks come to the StatusCallback we gave, or to the one a
            # messaging service may have configured; a bare number has neither.
            tracked = bool(self.context.callback_url or self.config.messaging_service_sid)
            return _receipt(answer if isinstance(answer, dict) else {}, message, tracked)
        code = _int(answer.get("code")) if isinstance(answer, dict) else None
        said = str(answer.get("message") or "") if isinstance(answer, dict) else ""
        raise _refusal(status, code, said, headers)

    async def _post(self, form: dict[str, str]) -> tuple[int, str, Mapping[str, str]]:
        # Built by hand: aiohttp.BasicAuth is deprecated, its replacement too new for us.
        credentials = f"{self.config.account_sid}:{self.config.auth_token.get_secret_value()}"
        auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        session = self.context.outbound.api_session()
        try:
            async with asyncio.timeout(self.context.timeout):
                async with session.post(self._url, data=form, headers=auth) as response:
                    body = (await response.read()).decode("utf-8", "replace")
                    return response.status, body, response.headers
        except TimeoutError:
            raise DeliveryError(f"Twilio did not answer within {self.context.timeout:g} s",
                                permanent=False) from None
        except (aiohttp.ClientError, OSError) as error:
            raise DeliveryError(f"Twilio: {describe_error(error)[1]}", permanent=False) from None

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        """Status callbacks (``MessageStatus``) and inbound messages (``From``, ``Body``)."""
        if not self.signed_by_twilio(request):
            return CallbackReply(status=403, body="bad or missing X-Twilio-Signature")
        params = {**request.query, **request.form}
        if params.get("MessageStatus") and params.get("MessageSid"):
            return CallbackReply(events=_status(params), body="")
        if "From" in params and "Body" in params:
            return CallbackReply(events=_inbound(params), body=EMPTY_TWIML,
                                 content_type="text/xml")
        return CallbackReply(status=400, body="not a Twilio status callback or inbound message")

    def signed_by_twilio(self, request: CallbackRequest) -> bool:
        """Whether ``X-Twilio-Signature`` is Twilio's for this request."""
        given = request.headers.get("x-twilio-signature", "")
        if not given:
            return False
        params = _signed_params(request)
        key = self.config.auth_token.get_secret_value()
        urls = {request.url, *([self.context.callback_url] if self.context.callback_url else [])}
        return any(hmac.compare_digest(twilio_signature(key, variant, params).encode(),
                                       given.encode())
                   for url in urls for variant in _port_variants(url))


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's request signature: HMAC-SHA1 of the URL and the sorted POST parameters.

    >>> twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", [
    ...     ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
    ...     ("From", "+12349013030"), ("To", "+18005551212")])
    '0/KCTR6DLpKmkAf8muzZqo1nDgQ='
    """
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _signed_params(request: CallbackRequest) -> list[tuple[str, str]]:
    """The POST parameters as sent, repeated names included (the form mapping drops them)."""
    if request.method.upper() != "POST":
        return []  # a GET webhook carries its parameters in the URL, which is signed
    if request.body:
        return parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return list(request.form.items())


def _port_variants(url: str) -> list[str]:
    """The URL as given, without its default port and with it: Twilio may sign either."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or port not in (None, default):
        return [url]
    bare = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{default}"))
    return [url, bare, with_port]


def _receipt(answer: dict[str, Any], message: Message, tracked: bool) -> Receipt:
    sid = answer.get("sid")
    parts = _int(answer.get("num_segments"))
    return Receipt(provider_id=str(sid) if sid else None,
                   parts=parts if parts and parts > 0 else count_parts(message.text).parts,
                   cost=_cost(answer.get("price")), tracked=tracked)


def _refusal(status: int, code: int | None, said: str,
             headers: Mapping[str, str]) -> DeliveryError:
    ours = (RECIPIENT_ERRORS.get(code) or TRANSIENT_ERRORS.get(code)
            or ACCOUNT_ERRORS.get(code)) if code is not None else None
    reason = f"Twilio error {code}: {ours or said or 'no reason given'}" if code else (
        f"Twilio answered HTTP {status}")
    provider_code = str(code or status)
    if code in RECIPIENT_ERRORS:
        return DeliveryError(reason, permanent=True, provider_code=provider_code)
    if status == 429 or status >= 500 or code in TRANSIENT_ERRORS:
        return DeliveryError(reason, permanent=False, provider_code=provider_code,
                             retry_after=_retry_after(headers))
    # Credentials, sender, account permissions, or a request Twilio does not understand.
    return DeliveryError(reason, permanent=False, channel_fault=True,
                         provider_code=provider_code)


def _status(params: Mapping[str, str]) -> list[ChannelEvent]:
    name = params["MessageStatus"].lower()
    status = REPORT_STATUS.get(name)
    if status is None:
        return []
    error = params.get("ErrorCode")
    detail = f"{name} (error {error})" if error else name
    return [DeliveryReport(params["MessageSid"], status, datetime.now(UTC), detail)]


def _inbound(params: Mapping[str, str]) -> list[ChannelEvent]:
    try:
        address = normalise_address("sms", params["From"])
    except AddressError:
        return []  # a short code or sender id cannot be a contact point
    now = datetime.now(UTC)
    events: list[ChannelEvent] = [InboundMessage("sms", address, params["Body"], now)]
    if params.get("OptOutType", "").upper() == "STOP":
        # Twilio's Advanced Opt-Out recognised the text as an opt-out (maybe a keyword of
        # its own list) and now blocks this sender for the number.
        events.append(OptOut("sms", address, now, f"Twilio opt-out: {params['Body']!r}"))
    return events


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _cost(price: Any) -> Decimal | None:
    """Twilio's price is negative (money taken) and null until the message went out."""
    try:
        return abs(Decimal(str(price))) if price not in (None, "") else None
    except InvalidOperation:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds or an HTTP date)."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
