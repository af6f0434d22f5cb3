"""The HTTP(S) check: one request, judged by status, keywords, conditions and speed.

A monitor's config, as YAML (keys are kebab-case)::

    kind: http
    url: https://example.com/health
    expected-status: [200-299, 304]
    keyword: healthy
    conditions: ["[BODY].status == UP", "[CERTIFICATE_EXPIRATION] > 14d"]
    max-response-time: 2s

The body is read (up to ``max-body-bytes``) only when a keyword or a ``[BODY]`` condition
needs it, and parsed as JSON only when a condition walks into it: most checks stop at
the response headers. Judging goes status, keywords, conditions, then speed; the first
failure is the outcome.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography import x509
from multidict import CIMultiDictProxy
from yarl import URL

from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.checks.http_config import DEFAULT_STATUS, MIB, HttpConfig, Plan
from dozor.core.conditions import evaluate_all
from dozor.core.durations import format_duration
from dozor.core.types import ErrorCode, Outcome
from dozor.outbound import (
    ExchangeError,
    ExchangeRecord,
    HttpResponse,
    describe_error,
)

__all__ = ["DEFAULT_STATUS", "MIB", "HttpCheck", "HttpConfig"]

_CHARSET = re.compile(r"""charset=["']?([\w.:-]+)""", re.IGNORECASE)


@dataclass(slots=True)
class _Response:
    """What the check judges: the final response, its body as text if it was read."""

    status: int
    url: URL
    redirects: int
    headers: CIMultiDictProxy[str]
    body: str | None
    size: int | None
    truncated: bool

    @classmethod
    def of(cls, response: HttpResponse) -> _Response:
        size = len(response.body) if response.body is not None else response.content_length
        return cls(response.status, response.url, response.redirects, response.headers,
                   _text(response), size, response.truncated)



@register
class HttpCheck:
    """Fetch a URL and judge the answer::

        outcome = await HttpCheck().run(HttpConfig(url="https://example.com"), ctx)
        outcome.ok, outcome.details["status"], list(outcome.phases)
        # (True, 200, ['dns', 'connect', 'tls', 'first_byte', 'total'])
    """

    kind: ClassVar[str] = "http"
    Config: ClassVar[type[CheckConfig]] = HttpConfig
    enforces_timeout: ClassVar[bool] = True  # the whole exchange runs under ctx.timeout

    async def run(self, config: HttpConfig, ctx: CheckContext) -> Outcome:
        if ctx.outbound is None:
            return Outcome.down(ErrorCode.INTERNAL, "the HTTP check needs an outbound client")
        plan = config._plan
        record = ExchangeRecord()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(ctx.timeout):
                response: HttpResponse | Exception = await ctx.outbound.exchange(
                    plan.request, record)
        except (ExchangeError, TimeoutError) as error:
            response = error
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        if isinstance(response, HttpResponse):
            outcome = _judge(config, plan, _Response.of(response), _Peer.of(record),
                             elapsed_ms, ctx.now)
        else:
            outcome = _failed(response, record, ctx)
        outcome.phases = {name: round(value, 3) for name, value in
                          {**record.phases_ms(), "total": elapsed_ms}.items()}
        return outcome


def _text(response: HttpResponse) -> str | None:
    """The body as text, in the charset the response names (UTF-8 when it names none
    or one nobody knows)."""
    if response.body is None:
        return None
    match = _CHARSET.search(response.headers.get("Content-Type", ""))
    charset = match.group(1) if match else "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:  # a server's made-up charset: read it as UTF-8 rather than fail
        charset = "utf-8"
    return response.body.decode(charset, errors="replace")


def _failed(error: BaseException, record: ExchangeRecord, ctx: CheckContext) -> Outcome:
    if isinstance(error, TimeoutError):
        if not record.connections:
            stage = "connecting"
        elif "first_byte" not in record.phases_ms():
            stage = "waiting for the response"
        else:
            stage = "reading the response"
        code, message = ErrorCode.TIMEOUT, f"timed out after {ctx.timeout:g}s {stage}"
    else:
        code, message = describe_error(error)  # an ExchangeError carries both
    return Outcome.down(code, message, **_Peer.of(record).details(ctx.now))


@dataclass(slots=True)
class _Peer:
    """Who answered: the last connection's IP and certificate expiry."""

    ip: str | None
    certificate_expires: datetime | None

    @classmethod
    def of(cls, record: ExchangeRecord) -> _Peer:
        expires = None
        if record.peer_certificate:
            certificate = x509.load_der_x509_certificate(record.peer_certificate)
            expires = certificate.not_valid_after_utc
        return cls(record.peer_ip, expires)

    def details(self, now: datetime) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.ip is not None:
            details["ip"] = self.ip
        if self.certificate_expires is not None:
            details["certificate_expires_at"] = self.certificate_expires.isoformat()
            details["certificate_days_left"] = (self.certificate_expires - now).days
        return details


Failure = tuple[ErrorCode, str] | None


def _judge(config: HttpConfig, plan: Plan, response: _Response, peer: _Peer,
           elapsed_ms: float, now: datetime) -> Outcome:
    details = {**_response_details(response), **peer.details(now)}
    failure = (_status_failure(config, plan, response) or _keyword_failure(config, response)
               or _condition_failure(config, response, peer, elapsed_ms, now)
               or _speed_failure(config, elapsed_ms))
    if failure:
        return Outcome.down(failure[0], failure[1], elapsed_ms, **details)
    return Outcome.up(elapsed_ms, **details)


def _status_failure(config: HttpConfig, plan: Plan, response: _Response) -> Failure:
    accepted = plan.status
    if not accepted or any(low <= response.status <= high for low, high in accepted):
        return None
    return ErrorCode.HTTP_STATUS, f"expected status {config.status_text}, got {response.status}"


def _keyword_failure(config: HttpConfig, response: _Response) -> Failure:
    if config.keyword is None and config.keyword_absent is None:
        return None
    body = response.body or ""
    if not config.keyword_case_sensitive:
        body = body.casefold()
    if config.keyword is not None and _fold(config, config.keyword) not in body:
        where = f" in the first {response.size} bytes" if response.truncated else ""
        return ErrorCode.KEYWORD, f"keyword {config.keyword!r} not found{where}"
    if config.keyword_absent is not None and _fold(config, config.keyword_absent) in body:
        return ErrorCode.KEYWORD, f"keyword {config.keyword_absent!r} found, but must be absent"
    return None


def _fold(config: HttpConfig, keyword: str) -> str:
    return keyword if config.keyword_case_sensitive else keyword.casefold()


def _condition_failure(config: HttpConfig, response: _Response, peer: _Peer,
                       elapsed_ms: float, now: datetime) -> Failure:
    if not config.conditions:
        return None
    values: dict[str, Any] = {
        "STATUS": response.status, "CONNECTED": True, "HEADER": response.headers,
        "RESPONSE_TIME": timedelta(milliseconds=elapsed_ms),
    }
    if response.body is not None:
        values["BODY"] = response.body
    if peer.ip is not None:
        values["IP"] = peer.ip
    if peer.certificate_expires is not None:
        values["CERTIFICATE_EXPIRATION"] = peer.certificate_expires - now
    failures = evaluate_all(config.conditions, values)
    if not failures:
        return None
    return ErrorCode.ASSERTION, "condition failed: " + "; ".join(failures)


def _speed_failure(config: HttpConfig, elapsed_ms: float) -> Failure:
    limit = config.max_response_time
    if limit is None or elapsed_ms <= limit.total_seconds() * 1000:
        return None
    allowed = format_duration(limit)
    return ErrorCode.TOO_SLOW, f"response took {elapsed_ms:.0f}ms, more than the {allowed} allowed"


def _response_details(response: _Response) -> dict[str, Any]:
    details: dict[str, Any] = {"status": response.status, "final_url": str(response.url)}
    if response.redirects:
        details["redirects"] = response.redirects
    if response.size is not None:
        details["size_bytes"] = response.size
    if response.truncated:
        details["body_truncated"] = True
    return details
