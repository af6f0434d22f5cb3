"""Meta's Graph API, shared by the Messenger and WhatsApp Cloud API channels.

Not a channel kind. What both products have in common:

- Calls are ``POST {api_base}/{version}/...`` with the token as ``Authorization: Bearer``
  (never in the query string, where it would end up in logs).
- Errors are JSON: ``{"error": {"code": 190, "error_subcode": 463, "message": ...,
  "error_data": {"details": ...}}}``, usually with HTTP 400 whatever the cause. The code
  (and subcode) decide; :data:`GRAPH_CODES` holds the codes every Graph product shares
  (1/2 transient, 4/17/32/613/80007 rate limits, 190 token, 10/200-299 permissions, 368
  policy block) and each channel adds its own.
- Rate-limit answers carry no Retry-After but ``X-Business-Use-Case-Usage`` (and
  ``X-App-Usage``/``X-Page-Usage``) JSON with ``estimated_time_to_regain_access`` in
  minutes, which becomes the DeliveryError's ``retry_after``.
- Webhooks: a GET with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge``
  when the URL is set up in the app dashboard (answered with the challenge when the
  token matches), then POSTs signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256
  of the raw body keyed with the app secret>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from dozor.notify.channels._http_api import (
    Answer,
    as_dict,
    hmac_sha256_hex,
    http_error,
    json_object,
    post_json,
    retry_after,
    same_secret,
)
from dozor.notify.channels.base import CallbackReply, CallbackRequest, ChannelContext, DeliveryError

GRAPH_API = "https://graph.facebook.com"
GRAPH_VERSION = "v25.0"


class Verdict(NamedTuple):
    permanent: bool
    channel_fault: bool


RECIPIENT = Verdict(permanent=True, channel_fault=False)  # this address cannot be reached
CHANNEL = Verdict(permanent=True, channel_fault=True)  # token, permission, config, template
RETRY = Verdict(permanent=False, channel_fault=False)  # rate limits, Meta's own trouble
RETRY_ELSEWHERE = Verdict(permanent=False, channel_fault=True)  # this sender is throttled

# A code, or (code, subcode) for the cases a subcode changes, to a verdict.
Codes = Mapping[int | tuple[int, int], Verdict]
GRAPH_CODES: Codes = {
    0: CHANNEL,  # AuthException
    1: RETRY,  # unknown error, "retry later"
    2: RETRY,  # temporary service error
    3: CHANNEL,  # the app lacks the capability
    4: RETRY,  # app-level rate limit
    10: CHANNEL,  # permission denied
    17: RETRY,  # user-level rate limit
    32: RETRY,  # page-level rate limit
    100: CHANNEL,  # invalid parameter: our request or config is wrong
    190: CHANNEL,  # access token invalid or expired
    368: CHANNEL,  # temporarily blocked for policy violations
    613: RETRY,  # calls exceeded the rate limit
    80007: RETRY,  # business account rate limit
    **{code: CHANNEL for code in range(200, 300)},  # API permissions
}
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Page-Usage")


async def graph_post(context: ChannelContext, url: str, token: str, payload: dict[str, Any],
                     product: str, codes: Codes) -> dict[str, Any]:
    """POST to the Graph API; the answer's JSON object, or DeliveryError from its error
    (``codes`` first, then :data:`GRAPH_CODES`, then the HTTP status)."""
    answer = await post_json(context, url, payload, {"Authorization": f"Bearer {token}"},
                             product)
    data = answer.data
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise graph_error(answer, data["error"], product, codes)
    if not 200 <= answer.status < 300:
        raise http_error(answer, product)
    if not isinstance(data, dict):
        raise DeliveryError(f"{product}'s answer is not JSON", permanent=False)
    return data


def graph_error(answer: Answer, error: dict[str, Any], product: str,
                codes: Codes) -> DeliveryError:
    code, subcode = error.get("code"), error.get("error_subcode")
    if not isinstance(code, int):
        return http_error(answer, product)
    verdict = _verdict(code, subcode if isinstance(subcode, int) else None, codes, answer)
    provider_code = f"{code}/{subcode}" if isinstance(subcode, int) else str(code)
    details = as_dict(error.get("error_data")).get("details")
    reason = f"{product} error {provider_code}: {error.get('message') or 'no message'}"
    if isinstance(details, str) and details:
        reason += f" ({details})"
    wait = _retry_hint(answer.headers) if not verdict.permanent else None
    return DeliveryError(reason, permanent=verdict.permanent, retry_after=wait,
                         provider_code=provider_code, channel_fault=verdict.channel_fault)


def _verdict(code: int, subcode: int | None, codes: Codes, answer: Answer) -> Verdict:
    for table in (codes, GRAPH_CODES):
        if subcode is not None and (code, subcode) in table:
            return table[(code, subcode)]
        if code in table:
            return table[code]
    if answer.status == 429 or answer.status >= 500:
        return RETRY
    return CHANNEL  # an error we do not know is not blamed on the recipient


def _retry_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: Retry-After, else the longest ``estimated_time_to_regain_access``
    (minutes) in Meta's usage headers."""
    seconds = retry_after(headers)
    if seconds is not None:
        return seconds
    minutes = [_regain_minutes(_json_header(headers.get(name))) for name in USAGE_HEADERS]
    longest = max(minutes)
    return longest * 60 if longest > 0 else None


def _json_header(value: str | None) -> Any:
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def _regain_minutes(usage: Any) -> float:
    """The largest ``estimated_time_to_regain_access`` anywhere in a usage header's JSON
    (the business one is ``{business_id: [{"type": ..., "estimated_time_...": 5}]}``)."""
    if isinstance(usage, list):
        return max((_regain_minutes(item) for item in usage), default=0.0)
    if not isinstance(usage, dict):
        return 0.0
    own = usage.get("estimated_time_to_regain_access")
    best = float(own) if isinstance(own, int | float) else 0.0
    return max([best, *(_regain_minutes(value) for value in usage.values())])


def verified_body(request: CallbackRequest, app_secret: str,
                  verify_token: str) -> CallbackReply | dict[str, Any]:
    """A webhook request's JSON body once its signature checks out, or the reply to give
    at once: the subscription challenge (GET), 403 for a bad signature or token, 400 for
    a body that is not a JSON object, 405 for other methods."""
    if request.method == "GET":
        return _subscription(request, verify_token)
    if request.method != "POST":
        return CallbackReply(status=405, body="GET or POST only")
    expected = "sha256=" + hmac_sha256_hex(app_secret, request.body)
    if not same_secret(request.headers.get("x-hub-signature-256"), expected):
        return CallbackReply(status=403, body="bad signature")
    body = json_object(request.body)
    return body if body is not None else CallbackReply(status=400, body="not a JSON object")


def _subscription(request: CallbackRequest, verify_token: str) -> CallbackReply:
    challenge = request.query.get("hub.challenge")
    if (request.query.get("hub.mode") == "subscribe" and challenge
            and same_secret(request.query.get("hub.verify_token"), verify_token)):
        return CallbackReply(body=challenge)
    return CallbackReply(status=403, body="verification failed")
