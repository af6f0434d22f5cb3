"""A local RDAP server for tests: a bootstrap ``/dns.json`` and ``/rdap/domain/<name>``.

Each test says what a domain answers (an expiry date, garbage, a 404, a slow reply)::

    server.answer("example.com", domain_answer(expires_at=datetime(2027, 1, 1, tzinfo=UTC)))
    server.serve_bootstrap(["com"])  # dns.json sends .com to this server

Unknown domains get a 404 with an RDAP error body, as real registries send.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.servers.aiohttp_base import LocalAiohttpServer


@dataclass
class Reply:
    """One canned answer: a JSON-able body (or raw text), a status, an optional delay."""

    body: Any = None
    status: int = 200
    delay: float = 0.0
    raw: str | None = None

    def response(self) -> web.Response:
        text = self.raw if self.raw is not None else json.dumps(self.body)
        return web.Response(status=self.status, text=text, content_type="application/rdap+json")


NOT_FOUND = Reply({"errorCode": 404, "title": "Not Found"}, status=404)


def domain_answer(
    name: str = "example.com",
    expires_at: datetime | None = None,
    registered_at: datetime | None = None,
    registrar: str | None = "Example Registrar, Inc.",
    status: tuple[str, ...] = ("client transfer prohibited",),
    extra_events: tuple[dict[str, str], ...] = (),
) -> Reply:
    """An RFC 9083 domain object shaped like the answers of real registries."""
    events = [{"eventAction": "last changed", "eventDate": "2025-01-02T03:04:05Z"},
              *extra_events]
    if registered_at:
        events.append({"eventAction": "registration", "eventDate": registered_at.isoformat()})
    if expires_at:
        events.append({"eventAction": "expiration", "eventDate": expires_at.isoformat()})
    body: dict[str, Any] = {
        "objectClassName": "domain", "ldhName": name.upper(), "status": list(status),
        "events": events, "rdapConformance": ["rdap_level_0"],
        "entities": [{"objectClassName": "entity", "roles": ["registrar"], "handle": "292",
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                               ["fn", {}, "text", registrar]]]}]
        if registrar else [],
    }
    return Reply(body)


class RdapServer(LocalAiohttpServer):
    """Serves canned RDAP answers on 127.0.0.1 at an ephemeral port; counts requests."""

    shutdown_timeout = 0.5  # a slow answer's handler is cancelled; closing waits this long

    def __init__(self) -> None:
        super().__init__()
        self.domains: dict[str, Reply] = {}
        self.bootstrap = Reply({"version": "1.0", "services": []})
        self.requests: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The RDAP base URL, as a bootstrap registry or ``rdap-url`` names it."""
        return f"{self.url}/rdap/"

    @property
    def bootstrap_url(self) -> str:
        return f"{self.url}/dns.json"

    def answer(self, name: str, reply: Reply) -> None:
        self.domains[name] = reply

    def serve_bootstrap(self, tlds: list[str], *others: tuple[list[str], list[str]]) -> None:
        """Make dns.json send ``tlds`` here, plus any (suffixes, urls) services given."""
        services = [[tlds, [self.base_url]], *([list(s), list(u)] for s, u in others)]
        self.bootstrap = Reply({"version": "1.0", "publication": "2026-01-01T00:00:00Z",
                                "services": services})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/dns.json", self._bootstrap)
        app.router.add_get("/{prefix:.*}/domain/{name}", self._domain)

    async def _bootstrap(self, request: web.Request) -> web.Response:
        self.requests["/dns.json"] += 1
        return await self._reply(self.bootstrap)

    async def _domain(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        name = request.match_info["name"]
        return await self._reply(self.domains.get(name, NOT_FOUND))

    @staticmethod
    async def _reply(reply: Reply) -> web.Response:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return reply.response()
