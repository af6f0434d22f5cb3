"""A fake Dozor server for probe tests: the probe protocol only, on loopback.

It speaks what ``dozor.probe.assignment`` and ``dozor.probe.sender`` describe::

    async with FakeProbeServer() as server:
        server.tokens["dzp_waw"] = "waw"
        server.assign(http_monitor(1, target.url("/up")))
        ...                                   # run an agent against server.url()
        assert server.stored_pairs() == {...}

``results`` holds every result of every batch it answered 200 to (a batch sent twice
shows twice there); ``failing`` makes it answer every request with that status;
``close()`` then ``start()`` models a restart on the same port.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.servers.aiohttp_base import LocalAiohttpServer

CREATED = datetime(2025, 1, 1, tzinfo=UTC).isoformat()


def http_monitor(monitor_id: int, url: str, interval_ms: int = 100, revision: int = 1,
                 **fields: Any) -> dict[str, Any]:
    """A monitor as the server assigns it: an http check of ``url``."""
    return {"id": monitor_id, "kind": "http", "config": {"url": url},
            "interval_ms": interval_ms, "retry_interval_ms": interval_ms, "timeout_ms": 2000,
            "confirm_after": 1, "recover_after": 1, "tags": [], "paused": False,
            "revision": revision, "created_at": CREATED, "push_token": None, **fields}


class FakeProbeServer(LocalAiohttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}  # token -> the location it belongs to
        self.monitors: list[dict[str, Any]] = []
        self.revision = 1
        self.results: list[dict[str, Any]] = []
        self.bodies: list[dict[str, Any]] = []  # every accepted results body
        self.failing: int | None = None
        self.monitor_reads = 0  # 200 answers to the monitors endpoint

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def assign(self, *monitors: dict[str, Any]) -> None:
        """Replace the assignment (every token's, in this fake) and bump the revision."""
        self.monitors = list(monitors)
        self.revision += 1

    def stored_pairs(self) -> list[tuple[int, int]]:
        return [(r["monitor_id"], r["at_ms"]) for r in self.results]

    def count(self, monitor_id: int) -> int:
        return sum(1 for r in self.results if r["monitor_id"] == monitor_id)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/probe/v1/monitors", self._monitors)
        app.router.add_post("/probe/v1/results", self._results)

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.failing is not None:
            return web.Response(status=self.failing, text="restarting")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            problem = {"type": "about:blank", "title": "Unauthorized", "status": 401,
                       "detail": "this probe token was revoked"}
            return web.Response(status=401, content_type="application/problem+json",
                                text=json.dumps(problem))
        return None

    async def _monitors(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        etag = f'"{self.revision}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        self.monitor_reads += 1
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return web.json_response({"location": self.tokens[token], "revision": self.revision,
                                  "monitors": self.monitors}, headers={"ETag": etag})

    async def _results(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        body = await request.json()
        known = set(self.stored_pairs())
        fresh = [r for r in body["results"] if (r["monitor_id"], r["at_ms"]) not in known]
        self.bodies.append(body)
        self.results.extend(body["results"])
        return web.json_response({"stored": len(fresh), "skipped": 0,
                                  "duplicates": len(body["results"]) - len(fresh)})
