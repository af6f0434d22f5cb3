"""The one place Dozor makes outbound HTTP requests from (checks, RDAP, provider APIs).

Every request gets the same user agent and connection rules (and, with accounts, the
same guard against private targets). Two kinds of traffic leave from here:

- the http check's measured exchange (:meth:`Outbound.exchange`): a fresh connection
  each time, its DNS, TCP, TLS and first-byte times taken apart, the peer noted;
- everything else through aiohttp sessions: provider APIs (:meth:`Outbound.api_session`,
  kept alive, DNS cached) and RDAP lookups (:meth:`Outbound.session`).

>>> from yarl import URL
>>> async def fetch(outbound: Outbound) -> int:
...     request = HttpRequest("GET", URL("http://127.0.0.1:8000/healthz"))
...     response = await outbound.exchange(request, ExchangeRecord())
...     return response.status
"""

from __future__ import annotations

import aiohttp
from aiohttp.abc import AbstractResolver

from dozor.outbound.errors import ExchangeError, describe_error
from dozor.outbound.exchange import (
    FAMILIES,
    ExchangeRecord,
    HttpRequest,
    HttpResponse,
    Network,
    exchange,
)
from dozor.outbound.guard import AddressPolicy, GuardedResolver
from dozor.outbound.tls import tls_setting

__all__ = ["AddressPolicy", "ExchangeError", "ExchangeRecord", "HttpRequest", "HttpResponse",
           "Outbound", "describe_error", "tls_setting"]


class Outbound:
    def __init__(self, user_agent: str, resolver: AbstractResolver | None = None,
                 policy: AddressPolicy | None = None) -> None:
        self.user_agent = user_agent
        self.policy = policy or AddressPolicy(allow_private=True)
        self._given_resolver = resolver  # None: the system's (tests pass a fake one)
        self._system_resolver: AbstractResolver | None = None
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._api: aiohttp.ClientSession | None = None
        self._tenant: aiohttp.ClientSession | None = None
        self._network: Network | None = None

    async def exchange(self, request: HttpRequest, record: ExchangeRecord) -> HttpResponse:
        """Make a check's request on fresh connections; ``record`` fills in as it goes.

        Raises ExchangeError for what a person should read about; bound it with a timeout.
        """
        if self._network is None:
            self._network = Network(self.user_agent, self._resolver(), self.policy)
        return await exchange(request, record, self._network)

    def api_session(self) -> aiohttp.ClientSession:
        """The shared session for the provider APIs the operator configured (SMS
        gateways, chat APIs): unlike checks, these keep connections alive and cache DNS,
        so a burst of messages is not a burst of handshakes. Callers bound each request
        with ``asyncio.timeout``."""
        if self._api is None or self._api.closed:
            self._api = self._pooled_session()
        return self._api

    def tenant_session(self) -> aiohttp.ClientSession:
        """Like :meth:`api_session`, for URLs the users gave (webhooks, Slack, Discord,
        Teams): every connection passes the address policy first."""
        if self.policy.allow_private:
            return self.api_session()
        if self._tenant is None or self._tenant.closed:
            self._tenant = self._pooled_session(self.policy)
        return self._tenant

    def _pooled_session(self, policy: AddressPolicy | None = None) -> aiohttp.ClientSession:
        resolver = self._resolver()
        connector = aiohttp.TCPConnector(
            limit=200, limit_per_host=50, ttl_dns_cache=60,
            resolver=GuardedResolver(resolver, policy) if policy else resolver,
            socket_factory=policy.socket_factory if policy else None)
        return aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": self.user_agent},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None))

    def session(self, family: str = "any") -> aiohttp.ClientSession:
        """A session for one-off lookups (RDAP) over an address family: ``any``, ``ipv4``
        or ``ipv6``. No connection is kept; callers bound requests with a timeout."""
        session = self._sessions.get(family)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(family=FAMILIES[family], limit=0,
                                             force_close=True, use_dns_cache=False,
                                             resolver=self._resolver())
            session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
            )
            self._sessions[family] = session
        return session

    def _resolver(self) -> AbstractResolver:
        if self._given_resolver is not None:
            return self._given_resolver
        if self._system_resolver is None:  # made inside the loop: it binds to it
            self._system_resolver = aiohttp.DefaultResolver()
        return self._system_resolver

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
        for pooled in (self._api, self._tenant):
            if pooled is not None:
                await pooled.close()
        self._api = self._tenant = None
