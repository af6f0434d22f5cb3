"""A local Kannel smsbox: ``GET /cgi-bin/sendsms``, answering and calling back as Kannel does.

::

    async with FakeKannel(users={"dozor": "s3cret"}) as kannel:
        ...  # point KannelConfig.sendsms_url at kannel.url("/cgi-bin/sendsms")
        sent = kannel.sent[-1]
        await kannel.report(sent, 1, "id:77 sub:001 dlvrd:001 stat:DELIVRD err:000")
        await kannel.inbound(get_url, "+48600100200", "STOP")  # an sms-service get-url

The checks and answers follow smsbox (gw/smsbox.c): 403 ``Authorization failed for
sendsms``; 400 ``Missing receiver number, rejected`` and ``Empty receiver number not
allowed, rejected``; 400 ``Number(s) has/have been denied by white- and/or black-lists.``
for numbers in ``blocked`` or with characters other than ``0123456789 +-``; 400 ``Sender
missing and no global set, rejected``; 400 for a misformed dlr-url, dlr-mask or coding;
403 ``Not routable. Do not try again.`` when ``routable`` is off; then 202 ``0: Accepted
for delivery`` (``3: Queued for later delivery`` when ``queueing``). Callbacks fill in
Kannel's escape codes (%d %A %T %p %P %a %%), URL-encoding what they insert, and a report
goes out only if the message's dlr-mask asked for its type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from tests.servers.smsfake import FakeProvider

NUMBER_CHARS = set("0123456789 +-")


@dataclass(slots=True)
class Sent:
    to: str
    text: str
    sender: str
    coding: int
    charset: str | None
    dlr_mask: int
    dlr_url: str | None


def expand(pattern: str, values: dict[str, str]) -> str:
    """Fill in Kannel's escape codes: ``%x`` becomes the URL-encoded value of ``x``, ``%%``
    a percent sign, and an unknown code stays as it is."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        code = pattern[i + 1] if char == "%" and i + 1 < len(pattern) else None
        if code == "%":
            out.append("%")
        elif code in values:
            out.append(quote(values[code], safe=""))
        else:
            out.append(char if code is None else char + code)
        i += 1 if code is None else 2
    return "".join(out)


class FakeKannel(FakeProvider):
    def __init__(self, users: dict[str, str] | None = None,
                 global_sender: str | None = None) -> None:
        super().__init__()
        self.users = users if users is not None else {"dozor": "s3cret"}
        self.global_sender = global_sender
        self.blocked: set[str] = set()  # numbers in the black-list
        self.routable = True  # False: no SMSC takes any number
        self.queueing = False  # True: the SMSC link is down and messages wait in the store
        self.sent: list[Sent] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/sendsms", self._sendsms)

    async def _sendsms(self, request: web.Request) -> web.Response:
        query = request.query
        user = query.get("username", query.get("user"))
        password = query.get("password", query.get("pass"))
        if user is None or password is None or self.users.get(user) != password:
            return web.Response(status=403, text="Authorization failed for sendsms")
        status, text = self._check(dict(query))
        if status != 202:
            return web.Response(status=status, text=text)
        self.sent.append(Sent(
            to=query["to"], text=query.get("text", ""),
            sender=query.get("from") or self.global_sender or "",
            coding=int(query.get("coding", "0")), charset=query.get("charset"),
            dlr_mask=int(query.get("dlr-mask", "0")), dlr_url=query.get("dlr-url")))
        return web.Response(status=202, text=text)

    def _check(self, query: dict[str, str]) -> tuple[int, str]:
        to = query.get("to")
        if to is None:
            return 400, "Missing receiver number, rejected"
        if not to:
            return 400, "Empty receiver number not allowed, rejected"
        if not set(to) <= NUMBER_CHARS or to in self.blocked:
            return 400, "Number(s) has/have been denied by white- and/or black-lists."
        if not query.get("from") and not self.global_sender:
            return 400, "Sender missing and no global set, rejected"
        url = query.get("dlr-url", "")
        if url and not url.lower().startswith(("http://", "https://")):
            return 400, "DLR-URL field misformed, rejected"
        if not -1 <= int(query.get("dlr-mask", "0")) <= 31:
            return 400, "DLR-Mask field misformed, rejected"
        if not -1 <= int(query.get("coding", "0")) <= 2:
            return 400, "Coding field misformed, rejected"
        if not self.routable:
            return 403, "Not routable. Do not try again."
        return 202, "3: Queued for later delivery" if self.queueing else (
            "0: Accepted for delivery")

    async def report(self, sent: Sent, kind: int, smsc_reply: str = "",
                     at: int | None = None) -> tuple[int, str] | None:
        """Call the message's dlr-url with a report of this type, if its mask asked for it."""
        if not sent.dlr_url or not sent.dlr_mask & kind:
            return None
        url = expand(sent.dlr_url, {
            **self._codes(at), "d": str(kind), "A": smsc_reply, "p": sent.to,
            "P": sent.sender, "a": sent.text, "c": str(sent.coding),
            "C": sent.charset or ""})
        return await self.call("GET", url)

    async def inbound(self, get_url: str, sender: str, text: str,
                      to: str = "+48500000000") -> tuple[int, str]:
        """Call an sms-service get-url with a received SMS."""
        url = expand(get_url, {**self._codes(None), "p": sender, "P": to, "a": text,
                               "c": "0", "C": "UTF-8"})
        return await self.call("GET", url)

    def _codes(self, at: int | None) -> dict[str, str]:
        """The escape codes every callback can use (the rest depend on the message)."""
        stamp = at if at is not None else int(time.time())
        return {"T": str(stamp), "t": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)),
                "i": "smsc1", "I": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "F": "0A1B2C3D",
                "B": "", "D": "", "o": "", "O": "", "m": "", "M": "", "n": "sendsms",
                "f": "smsc1", "x": "", "q": "", "Q": "", "k": "", "s": "", "S": "", "r": "",
                "b": "", "u": ""}
