"""The page a reset or invitation email links to: choose a password.

The link carries the token in its fragment (``/password-reset#dze_...``), which browsers
never send, so it stays out of access logs; a line of script copies it into the form.
Without script, the token can be pasted from the email. The form posts here, and the same
code as ``POST /api/v1/password-reset/confirm`` sets the password.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from dozor.api.deps import Connection
from dozor.api.passwords import ResetConfirm, reset_password
from dozor.api.problems import Problem

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Dozor</title>
</head><body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""
FORM = """<form method="post" action="/password-reset">
<p><label>Token from the email<br><input name="token" id="token" required size="50"></label></p>
<p><label>New password (at least 10 characters)<br>
<input name="password" type="password" minlength="10" maxlength="200" required
 autocomplete="new-password"></label></p>
<p><button type="submit">Set the password</button></p></form>
<script>document.getElementById("token").value = location.hash.slice(1);</script>"""


def _page(title: str, text: str, form: bool = False, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=escape(title), text=escape(text),
                                    form=FORM if form else ""), status_code=status)


def add_routes(app: FastAPI) -> None:
    @app.get("/password-reset", include_in_schema=False)
    async def password_page() -> HTMLResponse:
        return _page("Choose a password", "Choose the password for your Dozor account.",
                     form=True)

    @app.post("/password-reset", include_in_schema=False)
    async def set_password(request: Request, conn: Connection) -> HTMLResponse:
        # Parsed here: Starlette's form parser needs python-multipart for a few lines' work.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            body = ResetConfirm(token=form.get("token", ""), password=form.get("password", ""))
            await reset_password(request, conn, body.token, body.password)
        except ValidationError as error:
            reason = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
            return _page("Not changed", reason, form=True, status=422)
        except Problem as problem:  # nothing was changed: the token was not spent
            return _page("Not changed", problem.detail, form=True, status=problem.status)
        return _page("Password set", "Your password is set. Log in with it.")
