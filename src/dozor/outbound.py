"""The one place Dozor makes outbound HTTP requests from (checks, RDAP, later webhooks).

It owns the aiohttp sessions, so every request gets the same user agent, timeouts and,
in multi-tenant mode, the same guard against private targets. Monitoring wants a fresh
connection per check (a reused one would hide DNS, connect and TLS times), so the
connectors close connections after each request and never cache DNS answers.

>>> async def fetch(outbound: Outbound) -> int:
...     async with outbound.session().get("http://127.0.0.1:8000/healthz") as response:
...         return response.status
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import aiohttp

FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class Outbound:
    def __init__(
        self,
        user_agent: str,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.user_agent = user_agent
        self._trace_configs = list(trace_configs)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, family: str = "any") -> aiohttp.ClientSession:
        """The shared session for an address family: ``any``, ``ipv4`` or ``ipv6``."""
        session = self._sessions.get(family)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                family=FAMILIES[family], limit=0, force_close=True, use_dns_cache=False,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent},
                trace_configs=self._trace_configs,
                # Each request passes its own timeout; this is only the backstop.
                timeout=aiohttp.ClientTimeout(total=300),
                auto_decompress=True,
            )
            self._sessions[family] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
