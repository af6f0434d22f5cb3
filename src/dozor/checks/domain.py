"""Domain registration expiry, read from the registry over RDAP (RFC 9082/9083).

The check asks ``<base>/domain/<name>``, where the base is ``rdap-url`` when set and
otherwise comes from the IANA bootstrap registry (RFC 9224), kept for a day. It is down
with DOMAIN_EXPIRING when fewer than ``days-before-expiry`` days are left (or the domain
is already in its redemption period), and with PROTOCOL, TIMEOUT or CONNECTION when
RDAP gives no usable answer.

Expiry dates change slowly and registries rate-limit RDAP: an interval of hours (6h,
12h, 1d) is sensible. The monitor's interval decides; answers are not cached here.

>>> DomainConfig(domain="Bücher.example.").domain
'xn--bcher-kva.example'
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import idna
from pydantic import Field, field_validator

from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.checks.rdap import (
    BOOTSTRAP_URL,
    BootstrapRegistry,
    DomainRecord,
    RdapError,
    fetch_json,
    parse_domain,
)
from dozor.core.types import ErrorCode, Outcome

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# EPP statuses (RFC 8056) of a registration that has expired and is on its way out.
_EXPIRED_STATUSES = ("redemption period", "pending delete")


def normalize_domain(text: str) -> str:
    """A domain name in lower-case ASCII (IDN as punycode); raises ValueError.

    >>> normalize_domain("ПРИМЕР.рф")
    'xn--e1afmkfd.xn--p1ai'
    """
    name = text.strip().rstrip(".")
    if not name or re.search(r"[/:@\s]", name):
        raise ValueError(f"{text!r} is not a domain name (write it like example.com)")
    try:
        name = idna.encode(name, uts46=True).decode("ascii").lower()
    except idna.IDNAError as error:
        raise ValueError(f"{text!r} is not a valid domain name: {error}") from None
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{text!r} is a top-level domain; give a registered domain "
                         "such as example.com")
    if labels[-1].isdigit():
        raise ValueError(f"{text!r} is an IP address, which has no registration to expire")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{text!r} is not a valid domain name (letters, digits and "
                         "hyphens, labels of at most 63 characters)")
    return name


class DomainConfig(CheckConfig):
    """Which domain to watch and how early to warn.

    >>> DomainConfig.model_validate({"domain": "example.com", "days-before-expiry": 14})
    DomainConfig(domain='example.com', days_before_expiry=14, rdap_url=None)
    """

    domain: str
    days_before_expiry: int = Field(30, ge=0, le=3650)
    rdap_url: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain_is_valid(cls, value: str) -> str:
        return normalize_domain(value)

    @field_validator("rdap_url")
    @classmethod
    def _rdap_url_is_a_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("rdap-url must be an http(s) base URL, "
                             "e.g. https://rdap.verisign.com/com/v1/")
        if parts.query or parts.fragment:
            raise ValueError("rdap-url must be a base URL without query or fragment")
        return parts.geturl().rstrip("/") + "/"

    def target_host(self) -> str | None:
        # RDAP servers rate-limit per client: the per-host limit keeps us polite.
        return urlsplit(self.rdap_url).hostname if self.rdap_url else None


@register
class DomainCheck:
    """Checks domain expiry over RDAP; see the module docstring.

    >>> check = DomainCheck(bootstrap_url="http://127.0.0.1:8080/dns.json")
    """

    kind: ClassVar[str] = "domain"
    Config: ClassVar[type[CheckConfig]] = DomainConfig

    def __init__(self, bootstrap_url: str = BOOTSTRAP_URL) -> None:
        self.bootstrap = BootstrapRegistry(bootstrap_url)

    @property
    def bootstrap_url(self) -> str:
        return self.bootstrap.url

    @bootstrap_url.setter
    def bootstrap_url(self, url: str) -> None:
        """Point at another bootstrap registry (a mirror, a test server); drops the cache."""
        self.bootstrap = BootstrapRegistry(url)

    async def run(self, config: DomainConfig, ctx: CheckContext) -> Outcome:
        if ctx.outbound is None:
            return Outcome.down(ErrorCode.INTERNAL, "the domain check needs outbound HTTP")
        lookup = _Lookup(config, ctx, self.bootstrap)
        try:
            async with asyncio.timeout(ctx.timeout):
                return await lookup.run()
        except TimeoutError:
            return Outcome.down(ErrorCode.TIMEOUT,
                                f"no answer within {ctx.timeout:g}s {lookup.waiting_for}")
        except RdapError as error:
            return Outcome.down(error.code, error.message, **error.details)


class _Lookup:
    """One run's RDAP lookup; remembers what it waits for, to explain a timeout."""

    def __init__(self, config: DomainConfig, ctx: CheckContext,
                 bootstrap: BootstrapRegistry) -> None:
        assert ctx.outbound is not None
        self.config, self.now, self.bootstrap = config, ctx.now, bootstrap
        self.session = ctx.outbound.session()
        self.waiting_for = "from the RDAP bootstrap registry"

    async def run(self) -> Outcome:
        domain = self.config.domain
        base = self.config.rdap_url or await self.bootstrap.base_url(
            domain, self.session, self.now)
        url = f"{base}domain/{domain}"
        self.waiting_for = f"from {url}"
        started = time.perf_counter()
        data = await fetch_json(self.session, url, not_found=_not_found(domain, url))
        latency_ms = (time.perf_counter() - started) * 1000
        return judge(self.config, parse_domain(data), self.now, latency_ms, rdap_url=url)


def _not_found(domain: str, url: str) -> str:
    hint = " (watch the registered domain, e.g. example.com, not a subdomain)" \
        if domain.count(".") > 1 else ""
    return f"domain {domain} not found in RDAP at {url}{hint}"


def judge(
    config: DomainConfig, record: DomainRecord, now: datetime, latency_ms: float | None = None,
    **extra: Any,
) -> Outcome:
    """Up or down from an RDAP record: down when fewer than the threshold days are left.

    >>> from datetime import UTC
    >>> record = DomainRecord(datetime(2026, 1, 20, tzinfo=UTC), None, None, (), None)
    >>> judge(DomainConfig(domain="example.com"), record, datetime(2026, 1, 1, tzinfo=UTC)).message
    'domain example.com expires in 19 days, on 2026-01-20 (warning at 30 days)'
    """
    domain = config.domain
    if record.expires_at is None:
        return Outcome.down(ErrorCode.PROTOCOL, f"the RDAP answer for {domain} has no "
                            "expiration event (the registry may not publish expiry dates)",
                            latency_ms, **extra)
    days_left = (record.expires_at - now) // timedelta(days=1)
    details = _details(record, days_left) | extra
    on = record.expires_at.date().isoformat()
    if record.expires_at <= now:
        return Outcome.down(ErrorCode.DOMAIN_EXPIRING, f"domain {domain} expired on {on}",
                            latency_ms, **details)
    expired = [s for s in record.status if s.lower() in _EXPIRED_STATUSES]
    if expired:
        return Outcome.down(ErrorCode.DOMAIN_EXPIRING, f"domain {domain} is in status "
                            f"{expired[0]!r}: it has expired and will be deleted",
                            latency_ms, **details)
    if days_left < config.days_before_expiry:
        return Outcome.down(ErrorCode.DOMAIN_EXPIRING, f"domain {domain} expires in "
                            f"{_days(days_left)}, on {on} (warning at "
                            f"{_days(config.days_before_expiry)})", latency_ms, **details)
    return Outcome.up(latency_ms, **details)


def _details(record: DomainRecord, days_left: int) -> dict[str, Any]:
    return {
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "days_left": days_left,
        "registrar": record.registrar,
        "status": list(record.status),
        "registered_at": record.registered_at.isoformat() if record.registered_at else None,
    }


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
