"""RDAP for domains: ask a registry (RFC 9082), read its answer (RFC 9083), and find the
registry's server in the IANA bootstrap registry (RFC 9224).

>>> record = parse_domain({"events": [
...     {"eventAction": "expiration", "eventDate": "2027-08-13T04:00:00Z"}]})
>>> record.expires_at.isoformat()
'2027-08-13T04:00:00+00:00'
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from dozor.core.types import ErrorCode

BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"
# The whole IANA DNS registry is under 100 kB and a domain answer a few kB; a bigger
# answer is broken or hostile, and reading it all would cost memory for nothing.
RESPONSE_LIMIT = 2 * 1024 * 1024
ACCEPT = "application/rdap+json, application/json;q=0.9"


class RdapError(Exception):
    """An RDAP lookup failed; ``code`` says how, ``message`` says it to a person."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


async def fetch_json(session: aiohttp.ClientSession, url: str, *, not_found: str) -> Any:
    """GET an RDAP document and decode it; raises RdapError (``not_found`` on HTTP 404).

    Timeouts propagate as TimeoutError: the caller knows its deadline and what it waited for.
    """
    try:
        async with session.get(url, headers={"Accept": ACCEPT}) as response:
            _raise_for_status(response.status, url, not_found)
            body = await _read_limited(response, url)
    except TimeoutError:
        raise
    except aiohttp.ClientConnectionError as error:
        raise RdapError(ErrorCode.CONNECTION, f"cannot reach {url}: {_describe(error)}") from None
    except aiohttp.ClientError as error:
        raise RdapError(ErrorCode.PROTOCOL, f"bad answer from {url}: {_describe(error)}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise RdapError(ErrorCode.PROTOCOL, f"answer from {url} is not JSON") from None


async def _read_limited(response: aiohttp.ClientResponse, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > RESPONSE_LIMIT:
            raise RdapError(ErrorCode.PROTOCOL, f"answer from {url} is larger than "
                            f"{RESPONSE_LIMIT // 1024} kB")
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_for_status(status: int, url: str, not_found: str) -> None:
    if 200 <= status < 300:
        return
    if status == 404:
        raise RdapError(ErrorCode.PROTOCOL, not_found, http_status=status)
    if status == 429:
        message = f"{url} is rate limiting requests (HTTP 429); use a longer interval"
    else:
        message = f"{url} answered HTTP {status}"
    raise RdapError(ErrorCode.PROTOCOL, message, http_status=status)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


# -- the bootstrap registry -------------------------------------------------------------


def parse_bootstrap(data: Any) -> dict[str, tuple[str, ...]]:
    """Map each DNS label suffix (``com``, ``co.uk``) to its RDAP base URLs, https first.

    >>> parse_bootstrap({"services": [[["com", "net"], ["https://rdap.example/v1/"]]]})["net"]
    ('https://rdap.example/v1/',)
    """
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list):
        raise RdapError(ErrorCode.PROTOCOL, "the RDAP bootstrap registry has no services list")
    found: dict[str, tuple[str, ...]] = {}
    for entry in services:
        # An entry is [[suffix, ...], [url, ...]]; skip malformed ones, keep the rest usable.
        if not (isinstance(entry, list) and len(entry) >= 2
                and isinstance(entry[0], list) and isinstance(entry[1], list)):
            continue
        urls = [u for u in entry[1] if isinstance(u, str) and u.startswith(("https:", "http:"))]
        urls.sort(key=lambda url: not url.startswith("https:"))
        for suffix in entry[0]:
            if isinstance(suffix, str) and urls:
                found[suffix.lower().strip(".")] = tuple(urls)
    return found


def find_service(services: dict[str, tuple[str, ...]], domain: str) -> str:
    """The base URL for ``domain``: the longest matching suffix wins (RFC 9224, section 4).

    >>> find_service({"uk": ("https://a/",), "co.uk": ("https://b/",)}, "example.co.uk")
    'https://b/'
    """
    labels = domain.split(".")
    for start in range(len(labels)):
        urls = services.get(".".join(labels[start:]))
        if urls:
            return urls[0]
    raise RdapError(ErrorCode.PROTOCOL, f"no RDAP server for .{labels[-1]} in the IANA "
                    "bootstrap registry (the registry may not offer RDAP; set rdap-url)")


class BootstrapRegistry:
    """The IANA registry of RDAP servers, fetched when first needed and kept for a day.

    After a failed fetch it waits ``retry_after`` before trying again (so many domain
    monitors do not hammer IANA), and meanwhile keeps using an older copy if it has one.

    >>> registry = BootstrapRegistry("http://127.0.0.1:8080/dns.json")
    """

    def __init__(
        self,
        url: str = BOOTSTRAP_URL,
        max_age: timedelta = timedelta(days=1),
        retry_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self.url = url
        self.max_age = max_age
        self.retry_after = retry_after
        self._services: dict[str, tuple[str, ...]] | None = None
        self._fetched_at: datetime | None = None
        self._failure: tuple[datetime, RdapError] | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def base_url(self, domain: str, session: aiohttp.ClientSession, now: datetime) -> str:
        """The RDAP base URL (ending in ``/``) for ``domain``; raises RdapError."""
        return _with_slash(find_service(await self._current(session, now), domain))

    async def _current(
        self, session: aiohttp.ClientSession, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        if self._services is not None and self._fresh(now):
            return self._services
        # One fetch at a time: the others wait for it and then find a fresh copy.
        async with self._lock_for_this_loop():
            if self._services is not None and self._fresh(now):
                return self._services
            if not self._failed_recently(now):
                await self._refresh(session, now)
            if self._services is not None:
                return self._services
            assert self._failure is not None
            failure = self._failure[1]
            raise RdapError(failure.code, failure.message, **failure.details)

    async def _refresh(self, session: aiohttp.ClientSession, now: datetime) -> None:
        not_found = f"the RDAP bootstrap registry is not at {self.url} (HTTP 404)"
        try:
            self._services = parse_bootstrap(await fetch_json(session, self.url,
                                                              not_found=not_found))
        except RdapError as error:
            self._failure = (now, error)
            return
        self._fetched_at, self._failure = now, None

    def _fresh(self, now: datetime) -> bool:
        # A clock that went backwards makes the age negative: treat that copy as stale.
        return (self._fetched_at is not None
                and timedelta(0) <= now - self._fetched_at < self.max_age)

    def _failed_recently(self, now: datetime) -> bool:
        return (self._failure is not None
                and timedelta(0) <= now - self._failure[0] < self.retry_after)

    def _lock_for_this_loop(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; the check instance outlives loops
        # (tests run one loop each), so keep one lock per running loop.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


# -- a domain answer --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainRecord:
    """What Dozor reads from an RDAP domain answer."""

    expires_at: datetime | None
    registered_at: datetime | None
    last_changed_at: datetime | None
    status: tuple[str, ...]
    registrar: str | None


def parse_domain(data: Any) -> DomainRecord:
    """Read events, status and registrar from an RDAP domain object; raises RdapError."""
    if not isinstance(data, dict):
        raise RdapError(ErrorCode.PROTOCOL, "the RDAP answer is not a JSON object")
    if "errorCode" in data:
        title = data.get("title") or data.get("description") or "no description"
        raise RdapError(ErrorCode.PROTOCOL, f"RDAP error {data['errorCode']}: {title}")
    events = data.get("events")
    status = data.get("status")
    return DomainRecord(
        expires_at=_event_date(events, "expiration"),
        registered_at=_event_date(events, "registration"),
        last_changed_at=_event_date(events, "last changed"),
        status=tuple(s for s in status if isinstance(s, str)) if isinstance(status, list) else (),
        registrar=_registrar(data.get("entities")),
    )


def _event_date(events: Any, action: str) -> datetime | None:
    """The date of an event; with several of one action (rare), the latest."""
    if not isinstance(events, list):
        return None
    dates = [_parse_date(event.get("eventDate"), action) for event in events
             if isinstance(event, dict) and event.get("eventAction") == action]
    return max(dates) if dates else None


def _parse_date(value: Any, action: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RdapError(ErrorCode.PROTOCOL,
                        f"the RDAP {action} date {value!r} is not a date") from None
    # RFC 9083 dates carry a zone; a registry that leaves it out means UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _registrar(entities: Any, depth: int = 0) -> str | None:
    """The formatted name (vCard ``fn``) of the entity with the ``registrar`` role."""
    if not isinstance(entities, list) or depth > 3:
        return None
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        roles = entity.get("roles")
        if isinstance(roles, list) and "registrar" in roles:
            return _vcard_name(entity.get("vcardArray")) or _text(entity.get("handle"))
        nested = _registrar(entity.get("entities"), depth + 1)
        if nested:
            return nested
    return None


def _vcard_name(vcard: Any) -> str | None:
    # jCard (RFC 7095): ["vcard", [["fn", {}, "text", "Example Registrar, Inc."], ...]]
    if not (isinstance(vcard, list) and len(vcard) == 2 and isinstance(vcard[1], list)):
        return None
    for prop in vcard[1]:
        if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "fn":
            return _text(prop[3])
    return None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
