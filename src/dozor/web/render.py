"""Templates: Jinja2 with autoescape, in the reader's language, with the page's form token.

Templates call ``_("text")`` for every text a person reads; the English text is the key
and ``locale/pl/LC_MESSAGES/dozor.po`` holds its Polish.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from dozor import __version__
from dozor.web.i18n import LANGUAGES, pick, translator
from dozor.web.session import form_token

environment = Environment(loader=PackageLoader("dozor.web"), autoescape=select_autoescape(),
                          trim_blocks=True, lstrip_blocks=True)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """A compact age: ``45s``, ``12m``, ``3h``, ``5d``.

    >>> ago(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 3, 5, tzinfo=UTC))
    '3h'
    """
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


environment.filters["ago"] = ago


def language_of(request: Request, user: Any) -> str:
    chosen = getattr(user, "language", None) if user is not None else None
    return pick(chosen or request.cookies.get("dozor_language"),
                request.headers.get("accept-language"))


def render(request: Request, template: str, context: dict[str, Any],
           status: int = 200) -> HTMLResponse:
    language = language_of(request, context.get("user"))
    texts = translator(language)
    html = environment.get_template(template).render(
        context, _=texts.gettext, ngettext=texts.ngettext, language=language,
        languages=LANGUAGES, form_token=form_token(request), request=request,
        app_version=__version__, now=datetime.now(UTC))
    return HTMLResponse(html, status_code=status,
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": CSP})


# Our own script and styles only; inline SVG is markup, not script.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
