"""Refusals as pages: a page route that raises a ``Problem`` (403 for a viewer's form,
404 for another organisation's monitor) answers with an HTML page saying why, not the
API's problem+json."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from dozor.api.problems import Problem
from dozor.web.render import render


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Problem as problem:
                return render(request, "error.html", {"problem": problem},
                              status=problem.status)
        return handler
