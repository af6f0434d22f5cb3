"""Refusals as pages: a page route that raises a ``Problem`` (403 for a viewer's form,
404 for another organisation's monitor) answers with an HTML page saying why, not the
API's problem+json. So does a path the route's parameters refuse (``/monitors/0``): no
such page, 404."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from dozor.api.problems import Problem, invalid_input
from dozor.web.render import render


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Problem as problem:
                return _page(request, problem)
            except RequestValidationError as error:
                if all(e.get("loc", ("",))[0] == "path" for e in error.errors()):
                    return _page(request, Problem(404, "no such page"))
                return _page(request, invalid_input(error.errors()))
        return handler


def _page(request: Request, problem: Problem) -> Response:
    return render(request, "error.html", {"problem": problem}, status=problem.status)
