"""Confirmation and opt-out of contact points, and the consent ledger.

A point is confirmed by its holder: a code sent on that same channel and typed back, a
link (email), or the Telegram bot's deep link (``?start=TOKEN``). The ledger keeps each
grant and withdrawal: when, how, from where, and the text the holder agreed to.
Confirmation messages are rate-limited per point and per account, since sending codes to
strangers is itself a way to spam. Opting out (STOP, one-click unsubscribe, /stop, or the
provider telling us) is recorded and honoured at once: queued messages are cancelled.

Confirming an email point also confirms the Dozor account with that address: sign-up makes
the new user's address a point of their organisation, so one confirmation serves both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import bulk, outbox
from dozor.notify.contacts import PENDING_PREFIX
from dozor.notify.outbox import NewMessage
from dozor.notify.templates import consent_text, render
from dozor.privacy import audit, keys
from dozor.store import accounts
from dozor.store import notify_tables as n
from dozor.store import tables as t

CODE_LIFETIME = timedelta(minutes=30)
MAX_TRIES = 5  # wrong codes before a verification is spent
PER_POINT_PER_HOUR = 3
PER_POINT_GAP = timedelta(seconds=60)
PER_ORG_PER_HOUR = 20
OPTED_OUT = "point: its holder opted out; they must add it again themselves"
STOP_WORDS = frozenset({
    "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT",
    "OPT OUT", "/STOP",
    # Polish: "stop", "no", "end", "I resign", "unsubscribe me", "cancel".
    "NIE", "KONIEC", "REZYGNUJE", "REZYGNACJA", "WYPISZ", "WYPISZ MNIE", "ANULUJ",
})


class ConsentError(Exception):
    """A confirmation that cannot be done; the message says why (and names the field)."""


class TooSoon(ConsentError):
    """Too many confirmation messages lately; another may go in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class VerificationStarted:
    point_id: int
    method: str
    expires_at: datetime
    deep_link_token: str | None = None  # Telegram: the person opens t.me/<bot>?start=TOKEN


def is_stop(text: str) -> bool:
    """Whether an inbound text is an opt-out keyword (whole message, any case, accents
    ignored, trailing punctuation ignored).

    >>> is_stop(" stop! "), is_stop("Rezygnuję"), is_stop("stop the server"), is_stop("/stop")
    (True, True, False, True)
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^\w/ ]", "", folded).split()
    return " ".join(words).upper() in STOP_WORDS


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def start_verification(connection: AsyncConnection, point_id: int, now: datetime,
                             public_url: str = "") -> VerificationStarted:
    """Send (through the outbox) a code to the point, or, for Telegram, make a deep link."""
    point = await _point(connection, point_id)
    if point.opted_out_at is not None:
        raise ConsentError(OPTED_OUT)
    if point.confirmed_at is not None and point.failing_since is None:
        # A failing point may be confirmed again: that is how it is known to work again.
        raise ConsentError("point: already confirmed")
    await _check_rate(connection, point, now)
    if point.kind == "telegram":
        return await _deep_link(connection, point, now)
    org, language = await _org_and_language(connection, point)
    code = f"{secrets.randbelow(10**6):06d}"
    text = render("verification", language, code=code, org=org)
    shown = consent_text(language, org, point.address)
    verification_id = await _store(connection, point, "code", code, shown, now)
    body = text.body
    if point.kind == "email":
        token = secrets.token_urlsafe(24)
        await _store(connection, point, "link", token, shown, now)
        if public_url:
            body += f"\n{public_url.rstrip('/')}/confirm/{token}"
    # The point's id is in the key: SQLite gives a deleted point's verification ids again,
    # and a key used before would drop the new message as a repeat.
    await outbox.enqueue(connection, [NewMessage(
        point.org_id, point.contact_id, point.id, "verification",
        f"verify:{point.id}:{verification_id}", text.subject, body, language, now)])
    await bulk.check_and_suspend(connection, point.org_id, now)
    return VerificationStarted(point.id, "code", now + CODE_LIFETIME)


async def deep_link_url(connection: AsyncConnection, token: str) -> str:
    """Where a Telegram point's holder confirms: the bot's ``t.me`` link with the token,
    or the ``/start TOKEN`` command to send it when the bot's name is not configured."""
    c = n.notify_channels.c
    config = (await connection.execute(select(c.config).where(c.kind == "telegram"))).scalar()
    username = (config or {}).get("bot-username") or (config or {}).get("bot_username")
    return f"https://t.me/{username}?start={token}" if username else f"/start {token}"


async def _deep_link(connection: AsyncConnection, point: Any,
                     now: datetime) -> VerificationStarted:
    org, language = await _org_and_language(connection, point)
    token = secrets.token_urlsafe(18)
    await _store(connection, point, "deep_link", token,
                 consent_text(language, org, "Telegram"), now)
    return VerificationStarted(point.id, "deep_link", now + CODE_LIFETIME, token)


async def _check_rate(connection: AsyncConnection, point: Any, now: datetime) -> None:
    v = n.verifications.c
    hour = now - timedelta(hours=1)
    recent = (await connection.execute(
        select(func.count(), func.min(v.created_at), func.max(v.created_at))
        .where(v.point_id == point.id, v.created_at >= hour, v.method != "link"))).one()
    if recent[0] >= PER_POINT_PER_HOUR:
        raise TooSoon(f"point: at most {PER_POINT_PER_HOUR} confirmation messages an hour",
                      _seconds(recent[1] + timedelta(hours=1) - now))
    if recent[2] is not None and now - recent[2] < PER_POINT_GAP:
        raise TooSoon("point: wait a minute before asking for another code",
                      _seconds(recent[2] + PER_POINT_GAP - now))
    by_org = (await connection.execute(
        select(func.count(), func.min(v.created_at))
        .where(v.org_id == point.org_id, v.created_at >= hour, v.method != "link"))).one()
    if by_org[0] >= PER_ORG_PER_HOUR:
        raise TooSoon(f"at most {PER_ORG_PER_HOUR} confirmation messages an hour "
                      "per account", _seconds(by_org[1] + timedelta(hours=1) - now))


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


async def _store(connection: AsyncConnection, point: Any, method: str, secret: str,
                 shown: str, now: datetime) -> int:
    result = await connection.execute(insert(n.verifications).values(
        point_id=point.id, org_id=point.org_id, method=method, code_hash=_digest(secret),
        text_shown=shown, expires_at=now + CODE_LIFETIME, failed_tries=0, created_at=now,
    ).returning(n.verifications.c.id))
    return int(result.scalar_one())


async def confirm_code(connection: AsyncConnection, point_id: int, code: str, now: datetime,
                       source: str | None = None, user_agent: str | None = None) -> None:
    """Confirm a point with the code its holder received; ConsentError if wrong."""
    v = n.verifications.c
    pending = (await connection.execute(
        select(v.id, v.code_hash, v.failed_tries, v.text_shown)
        .where(v.point_id == point_id, v.method == "code", v.used_at.is_(None),
               v.expires_at > now, v.failed_tries < MAX_TRIES)
        .order_by(v.id.desc()))).all()
    if not pending:
        raise ConsentError("code: no confirmation is waiting (ask for a new code)")
    for row in pending:
        if hmac.compare_digest(row.code_hash, _digest(code.strip())):
            await _grant(connection, point_id, row.id, "code", row.text_shown, now, source,
                         user_agent)
            return
    await connection.execute(update(n.verifications).where(v.id == pending[0].id)
                             .values(failed_tries=v.failed_tries + 1))
    raise ConsentError("code: wrong code")


async def confirm_token(connection: AsyncConnection, token: str, now: datetime,
                        source: str | None = None, user_agent: str | None = None,
                        address: str | None = None) -> int:
    """Confirm by a link's token, or a deep link's (``address``: the chat it came from).
    Returns the point's id."""
    v = n.verifications.c
    row = (await connection.execute(
        select(v.id, v.point_id, v.method, v.text_shown)
        .where(v.code_hash == _digest(token), v.used_at.is_(None), v.expires_at > now,
               v.method.in_(("link", "deep_link"))))).first()
    if row is None:
        raise ConsentError("token: unknown or expired confirmation link")
    if row.method == "deep_link":
        if address is None:
            raise ConsentError("token: a deep link is confirmed by the bot")
        await _set_pending_address(connection, row.point_id, address)
    await _grant(connection, row.point_id, row.id, row.method, row.text_shown, now, source,
                 user_agent)
    return int(row.point_id)


async def _set_pending_address(connection: AsyncConnection, point_id: int,
                               address: str) -> None:
    p = n.contact_points.c
    point = await _point(connection, point_id)
    if not point.address.startswith(PENDING_PREFIX):
        return  # the address is known already
    await keys.ensure(connection, point.org_id)
    await connection.execute(update(n.contact_points)
                             .where(p.id == point_id, p.address_digest == point.address_digest)
                             .values(address=keys.Personal(point.org_id, address),
                                     address_digest=await keys.digest_of(
                                         connection, point.kind, address)))


async def _grant(connection: AsyncConnection, point_id: int, verification_id: int,
                 method: str, shown: str, now: datetime, source: str | None,
                 user_agent: str | None) -> None:
    v, p = n.verifications.c, n.contact_points.c
    if (await _point(connection, point_id)).opted_out_at is not None:
        # A code or link sent before the holder opted out must not bring them back.
        raise ConsentError(OPTED_OUT)
    await connection.execute(update(n.verifications)
                             .where(v.point_id == point_id, v.used_at.is_(None))
                             .values(used_at=now))
    await connection.execute(update(n.contact_points).where(p.id == point_id).values(
        confirmed_at=now, failing_since=None, failing_reason=None))
    point = await _point(connection, point_id)
    await _ledger(connection, point, "granted", method, now, source, user_agent, shown,
                  f"verification {verification_id}")
    if point.kind == "email":
        for user_id in await accounts.confirm_email(connection, point.address, now):
            # In the user's own organisation's log: the point's may be somebody else's.
            await audit.record(connection, "email_confirmed", user_id=user_id,
                               org_id=await accounts.home_org(connection, user_id))


async def opt_out(connection: AsyncConnection, kind: str, address: str, method: str,
                  now: datetime, source: str | None = None, detail: str | None = None) -> int:
    """Opt a recipient out of every point with this address (in every account: the
    person asked us, not one account, to stop). Returns how many points."""
    p = n.contact_points.c
    found = await keys.digest_of(connection, kind, address)
    points = (await connection.execute(select(n.contact_points).where(
        p.kind == kind, p.address_digest == found, p.opted_out_at.is_(None)))).all()
    for point in points:
        await withdraw(connection, point, method, now, source or address, None, detail)
    return len(points)


async def opt_out_by_token(connection: AsyncConnection, token: str, now: datetime,
                           source: str | None, user_agent: str | None) -> bool:
    """One-click unsubscribe (RFC 8058): the token is the point's unsubscribe token."""
    p = n.contact_points.c
    point = (await connection.execute(select(n.contact_points).where(
        p.unsubscribe_token == token))).first()
    if point is None:
        return False
    if point.opted_out_at is None:
        await withdraw(connection, point, "unsubscribe_link", now, source, user_agent, None)
    return True


async def withdraw(connection: AsyncConnection, point: Any, method: str, now: datetime,
                   source: str | None, user_agent: str | None, detail: str | None) -> None:
    p, m = n.contact_points.c, n.messages.c
    await connection.execute(update(n.contact_points).where(p.id == point.id)
                             .values(opted_out_at=now))
    await outbox.cancel_queued(connection, m.point_id == point.id, "the recipient opted out",
                               now)
    await _ledger(connection, point, "withdrawn", method, now, source, user_agent, None,
                  detail)


async def _ledger(connection: AsyncConnection, point: Any, action: str, method: str,
                  now: datetime, source: str | None, user_agent: str | None,
                  shown: str | None, detail: str | None) -> None:
    org = point.org_id
    await keys.ensure(connection, org)
    await connection.execute(insert(n.consents).values(
        org_id=org, point_id=point.id, kind=point.kind,
        address=keys.Personal(org, point.address), action=action, method=method, at=now,
        source=keys.Personal.of(org, (source or "")[:200] or None),
        user_agent=keys.Personal.of(org, (user_agent or "")[:300] or None),
        text_shown=shown, detail=detail))


async def _point(connection: AsyncConnection, point_id: int) -> Any:
    p = n.contact_points.c
    point = (await connection.execute(select(n.contact_points).where(p.id == point_id))).first()
    if point is None:
        raise ConsentError(f"point: no contact point {point_id}")
    return point


async def _org_and_language(connection: AsyncConnection, point: Any) -> tuple[str, str]:
    o, c = t.organizations.c, n.contacts.c
    row = (await connection.execute(
        select(o.name, c.language).join(n.contacts, c.org_id == o.id)
        .where(c.id == point.contact_id))).one()
    return str(row.name), str(row.language)
