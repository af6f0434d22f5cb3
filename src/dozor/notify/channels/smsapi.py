"""SMSAPI.pl (SMSAPI.com): SMS through its ``sms.do`` REST endpoint, with an OAuth token.

Quirks worth knowing:

- Refusals come back as HTTP 200 with ``{"error": 13, "message": "..."}``; only the number
  tells a bad recipient from a bad account. The front end answers 401, 429 and 5xx on its
  own too, sometimes with the same body, so the body's code wins over the HTTP status.
- ``idx`` (our idempotency key) with ``check_idx=1`` makes a send idempotent: the same idx
  again is refused with error 53. Here that means "sent before" and counts as accepted, so
  a retry after a crash is never a second SMS. SMSAPI does not repeat the first message's
  id then, so such a receipt has no provider id.
- Numbers are sent without the leading "+".
- Delivery reports arrive at ``notify_url`` (our callback URL) as GET requests with
  ``MsgId``, ``status`` (401..412), ``status_name``, ``idx``, ``donedate``; several reports
  may share one request as comma-separated values. Inbound texts (set the same URL as
  "callback for received messages" in the customer panel) arrive with ``sms_from``,
  ``sms_text``, ``sms_date``. Both want the answer ``OK``. SMSAPI signs neither: the secret
  in the callback URL is what protects them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import AnyHttpUrl, SecretStr

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
    Receipt,
    register,
)
from dozor.notify.points import AddressError, normalise_address
from dozor.notify.sms_parts import count_parts
from dozor.outbound import describe_error


class SmsapiConfig(ChannelConfig):
    token: SecretStr  # an OAuth token from the customer panel, with the "sms" scope
    sender: str | None = None  # a registered sender name; None: the account's default
    api_base: AnyHttpUrl = AnyHttpUrl("https://api.smsapi.pl")  # api.smsapi.com for .com
    test: bool = False  # SMSAPI's test mode: requests are checked, nothing is sent or billed


# Error codes of sms.do (SMSAPI's documented list). Anything not listed is treated as the
# channel's fault: the request was refused for a reason of ours, not the recipient's.
ALREADY_SENT = 53  # "idx already used" with check_idx=1
RECIPIENT_ERRORS = {
    13: "no valid recipient number (wrong, landline or on a blacklist)",
    57: "the number is on the account's blacklist",
}
TRANSIENT_ERRORS = {
    52: "too many messages to this number in a short time",
    200: "the message could not be submitted",
    201: "SMSAPI internal error",
    202: "too many simultaneous requests",
    203: "too many requests",
    999: "SMSAPI internal error",
}
ACCOUNT_ERRORS = {
    14: "the sender name is not registered or not approved",
    101: "the token is wrong or lacks the sms scope",
    102: "wrong username or password",
    103: "not enough points on the account",
    105: "this IP address is not on the account's API filter",
    110: "the service is not enabled for the account",
}

# Delivery report statuses: code -> name, and what each means for us.
STATUS_NAMES = {
    401: "NOT_FOUND", 402: "EXPIRED", 403: "SENT", 404: "DELIVERED", 405: "UNDELIVERED",
    406: "FAILED", 407: "REJECTED", 408: "UNKNOWN", 409: "QUEUE", 410: "ACCEPTED",
    411: "RENEWAL", 412: "STOP",
}
ReportStatus = Literal["delivered", "failed", "accepted"]
REPORT_STATUS: dict[str, ReportStatus] = {
    "DELIVERED": "delivered",
    "UNDELIVERED": "failed", "FAILED": "failed", "REJECTED": "failed", "EXPIRED": "failed",
    "STOP": "failed",
    "SENT": "accepted", "ACCEPTED": "accepted",
}  # QUEUE, RENEWAL, UNKNOWN, NOT_FOUND say nothing new: no event


@register
class SmsapiChannel:
    """Sends SMS through SMSAPI and turns its callbacks into delivery reports and replies.

    >>> from dozor.outbound import Outbound
    >>> context = ChannelContext(Outbound("dozor"), callback_url="https://dozor.example/cb/7")
    >>> channel = SmsapiChannel(SmsapiConfig(token="t0k3n", sender="Dozor"), context)
    >>> channel.form(Message(1, "msg-1", "down", "Down", "api is down"),
    ...              ContactPoint(1, "sms", "+48600100200"))["to"]
    '48600100200'
    """

    kind: ClassVar[str] = "smsapi"
    point_kind: ClassVar[str] = "sms"
    Config: ClassVar[type[ChannelConfig]] = SmsapiConfig

    def __init__(self, config: SmsapiConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context
        self._url = str(config.api_base).rstrip("/") + "/sms.do"

    def form(self, message: Message, point: ContactPoint) -> dict[str, str]:
        """The fields of the sms.do request for one message."""
        form = {
            "to": point.address.removeprefix("+"), "message": message.text,
            "format": "json", "encoding": "utf-8", "details": "1",
            "idx": idx(message.idempotency_key), "check_idx": "1",
        }
        if self.config.sender:
            form["from"] = self.config.sender
        if self.context.callback_url:
            form["notify_url"] = self.context.callback_url
        if self.config.test:
            form["test"] = "1"
        return form

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        status, body, headers = await self._post(self.form(message, point))
        answer = _json(body)
        if isinstance(answer, dict) and "error" in answer:
            return self._refused(answer, status, headers, message)
        if status == 200 and isinstance(answer, dict) and _first(answer.get("list")):
            return self._receipt(answer, message)
        raise _http_error(status, headers)

    async def _post(self, form: dict[str, str]) -> tuple[int, str, Mapping[str, str]]:
        token = self.config.token.get_secret_value()
        session = self.context.outbound.api_session()
        try:
            async with asyncio.timeout(self.context.timeout):
                async with session.post(self._url, data=form,
                                        headers={"Authorization": f"Bearer {token}"}) as response:
                    body = (await response.read()).decode("utf-8", "replace")
                    return response.status, body, response.headers
        except TimeoutError:
            raise DeliveryError(f"SMSAPI did not answer within {self.context.timeout:g} s",
                                permanent=False) from None
        except (aiohttp.ClientError, OSError) as error:
            raise DeliveryError(f"SMSAPI: {describe_error(error)[1]}", permanent=False) from None

    def _receipt(self, answer: dict[str, Any], message: Message) -> Receipt:
        sent = _first(answer["list"])
        parts = _int(sent.get("parts")) or _int(answer.get("parts"))
        return Receipt(provider_id=str(sent.get("id")) if sent.get("id") else None,
                       parts=parts or count_parts(message.text).parts,
                       cost=_decimal(sent.get("points")), tracked=not self.config.test)

    def _refused(self, answer: dict[str, Any], status: int, headers: Mapping[str, str],
                 message: Message) -> Receipt:
        code = _int(answer.get("error")) or 0
        said = str(answer.get("message") or "").strip()
        if code == ALREADY_SENT:  # sent by an earlier attempt: that is what idx is for
            return Receipt(provider_id=None, parts=count_parts(message.text).parts,
                           tracked=not self.config.test)
        reason = f"SMSAPI error {code}: " + (
            RECIPIENT_ERRORS.get(code) or TRANSIENT_ERRORS.get(code)
            or ACCOUNT_ERRORS.get(code) or said or "no reason given")
        if code in RECIPIENT_ERRORS:
            raise DeliveryError(reason, permanent=True, provider_code=str(code))
        if code in TRANSIENT_ERRORS or status == 429 or status >= 500:
            raise DeliveryError(reason, permanent=False, provider_code=str(code),
                                retry_after=_retry_after(headers))
        raise DeliveryError(reason, permanent=False, channel_fault=True,
                            provider_code=str(code))

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        """Delivery reports (``MsgId``...) and inbound texts (``sms_from``...), by GET or POST."""
        params = {**request.query, **request.form}
        try:
            if "MsgId" in params and "sms_from" not in params:
                return CallbackReply(events=_reports(params))
            if "sms_from" in params:
                return CallbackReply(events=_inbound(params))
        except ValueError as error:
            return CallbackReply(status=400, body=f"malformed SMSAPI callback: {error}")
        return CallbackReply(status=400, body="not an SMSAPI delivery report or inbound SMS")


def idx(key: str) -> str:
    """Our idempotency key as SMSAPI's ``idx``, which takes letters and digits only: kept
    when it fits, else a digest of it (still the same on every retry).

    >>> idx("msg11"), idx("down:12:7")
    ('msg11', '9d7eb89dc807b6cdc97bbd106c3b5c2f57b813bf')
    """
    if key.isascii() and key.isalnum() and len(key) <= 255:
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def _http_error(status: int, headers: Mapping[str, str]) -> DeliveryError:
    """An answer without SMSAPI's error body: judge by the HTTP status."""
    if status == 429:
        return DeliveryError("SMSAPI: too many requests (HTTP 429)", permanent=False,
                             retry_after=_retry_after(headers), provider_code="429")
    if status in (401, 403):
        return DeliveryError(f"SMSAPI refused the token (HTTP {status})", permanent=False,
                             channel_fault=True, provider_code=str(status))
    if status >= 500 or 200 <= status < 300:
        # A 200 we cannot read may or may not have sent the SMS; the retry is safe (idx).
        what = "an unreadable answer" if status < 300 else f"HTTP {status}"
        return DeliveryError(f"SMSAPI gave {what}", permanent=False, provider_code=str(status))
    return DeliveryError(f"SMSAPI refused the request (HTTP {status})", permanent=False,
                         channel_fault=True, provider_code=str(status))


def _reports(params: Mapping[str, str]) -> list[ChannelEvent]:
    ids = params["MsgId"].split(",")
    names = _column(params, "status_name", len(ids))
    codes = _column(params, "status", len(ids))
    dates = _column(params, "donedate", len(ids))
    events: list[ChannelEvent] = []
    for msg_id, name, code, date in zip(ids, names, codes, dates, strict=True):
        name = name or STATUS_NAMES.get(_int(code) or 0, "")
        status = REPORT_STATUS.get(name.upper())
        if not msg_id.strip() or not name:
            raise ValueError("a report without MsgId or status")
        if status is not None:
            detail = f"{name} ({code})" if code else name
            events.append(DeliveryReport(msg_id.strip(), status, _timestamp(date), detail))
    return events


def _column(params: Mapping[str, str], name: str, count: int) -> list[str]:
    """One comma-separated field of a multi-report callback, as many values as ids."""
    if not params.get(name):
        return [""] * count
    values = params[name].split(",")
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} values for {count} MsgId")
    return values


def _inbound(params: Mapping[str, str]) -> list[ChannelEvent]:
    sender = params["sms_from"].strip()
    if "sms_text" not in params:
        raise ValueError("an inbound SMS without sms_text")
    try:
        address = normalise_address("sms", "+" + sender.removeprefix("+"))
    except AddressError:
        return []  # an alphanumeric or short-code sender cannot be a contact point
    return [InboundMessage("sms", address, params["sms_text"],
                           _timestamp(params.get("sms_date", "")))]


def _first(items: Any) -> dict[str, Any]:
    """The first message of sms.do's list, or {} when the list is not what SMSAPI sends."""
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, dict) else {}


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


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _timestamp(value: str) -> datetime:
    seconds = _int(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC)


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
