"""The people of an organisation and their roles.

Admins add people by email: someone with a Dozor account joins at once (and is told by
email); a new address gets an invitation with a one-time token to choose a password
(``POST /password-reset/confirm``). Only an owner makes or unmakes owners, and the last
owner can never be removed or demoted. A removed member's API tokens in the organisation
are revoked and their sessions there end.

Membership changes of one organisation take turns (its row is locked), so two owners
demoting each other at once cannot leave it without one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging, personal_reads
from dozor.api.deps import AppSettings, Caller, Connection, Id
from dozor.api.fields import Email, Language, Role
from dozor.api.passwords import INVITE_LIFETIME, issue_token, link
from dozor.api.problems import Problem, invalid
from dozor.api.ratelimit import RateLimit, enforce
from dozor.api.security import Principal, client_ip
from dozor.notify import account_mail
from dozor.privacy import audit
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store import tables as t
from dozor.validation import Label

router = APIRouter(tags=["members"], dependencies=[personal_reads.recorded("members")])
# Each sends an email to an address an admin typed.
ADDS_BY_ORG = RateLimit("member_adds_by_org", 20, 3600.0)
Limit = Annotated[int, Query(ge=1, le=500)]


MonitorTags = Annotated[
    list[Annotated[Label, Field(min_length=1, max_length=64)]] | None,
    Field(None, min_length=1, max_length=50,
          description="a sub-account: only the monitors carrying one of these tags "
          "(viewers and members only; null: the whole organisation)")]


class _Scoped(BaseModel):
    @model_validator(mode="after")
    def _sub_accounts_are_viewers_or_members(self) -> Any:
        role = getattr(self, "role", None)
        if getattr(self, "monitor_tags", None) is not None and role in ("admin", "owner"):
            raise ValueError("monitor_tags: an admin or owner manages the whole "
                             "organisation; limit viewers and members only")
        return self


class NewMember(_Scoped):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role = "member"
    name: str | None = Field(None, min_length=1, max_length=200,
                             description="for a new address (default: its local part)")
    language: Language = Field("en", description="of the invitation email")
    monitor_tags: MonitorTags = None


class MemberChange(_Scoped):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    monitor_tags: MonitorTags = None


@router.get("/members")
async def list_members(caller: Caller, conn: Connection, limit: Limit = 100,
                       cursor: str | None = None) -> dict[str, Any]:
    """The organisation's people, by user id. ``pending``: invited, no password yet."""
    m = a.memberships.c
    query = _members().where(m.org_id == caller.org_id, m.user_id > (paging.decode(cursor) or 0))
    rows = (await conn.execute(query.order_by(m.user_id).limit(limit + 1))).all()
    more = len(rows) > limit
    return {"items": [_view(row) for row in rows[:limit]],
            "next_cursor": paging.encode(rows[limit - 1].user_id) if more else None}


@router.post("/members", status_code=201)
async def add_member(body: NewMember, request: Request, response: Response, caller: Caller,
                     conn: Connection, settings: AppSettings) -> dict[str, Any]:
    """Add a person by email with a role (admins; owners to add an owner)."""
    caller = await _lock(conn, caller)
    caller.require("admin", write=True)
    if body.role == "owner":
        _owner_only(caller)
    user = await accounts.user_by_email(conn, body.email)
    if user is not None and await accounts.membership(conn, user.id, caller.org_id):
        raise Problem(409, "email: already a member",
                      errors=[{"field": "email", "message": "already a member"}])
    await enforce(request, (ADDS_BY_ORG, f"org:{caller.org_id}"),
                  detail="too many people added lately; try again later")
    now = datetime.now(UTC)
    user_id = user.id if user is not None else await _invite(conn, body, now)
    # Someone invited elsewhere who never chose a password gets an invitation too.
    invited = user is None or user.password_hash == accounts.UNUSABLE_PASSWORD
    await conn.execute(insert(a.memberships).values(
        user_id=user_id, org_id=caller.org_id, role=body.role, created_at=now,
        monitor_tags=_unique(body.monitor_tags)))
    await _tell(conn, caller, user_id, body, settings, invited, now)
    await audit.record(conn, "member_added", org_id=caller.org_id, user_id=caller.user_id,
                       target=f"user {user_id}", ip=client_ip(request),
                       detail={"role": body.role, "invited": invited,
                               "monitor_tags": _unique(body.monitor_tags)})
    response.headers["Location"] = f"/api/v1/members/{user_id}"
    return _view(await _member(conn, caller.org_id, user_id))


async def _invite(conn: AsyncConnection, body: NewMember, now: datetime) -> int:
    """A user row for a new address, with no usable password until they choose one."""
    result = await conn.execute(insert(a.users).values(
        **await accounts.email_fields(conn, body.email),
        name=body.name or body.email.partition("@")[0],
        password_hash=accounts.UNUSABLE_PASSWORD, failed_logins=0, created_at=now,
    ).returning(a.users.c.id))
    return int(result.scalar_one())


async def _tell(conn: AsyncConnection, caller: Principal, user_id: int, body: NewMember,
                settings: Settings, invited: bool, now: datetime) -> None:
    """Email the invitation (with its token), or the notice that they were added."""
    inviter = (await accounts.user(conn, caller.user_id)).name
    org = (await conn.execute(select(t.organizations.c.name)
                              .where(t.organizations.c.id == caller.org_id))).scalar_one()
    values: dict[str, Any] = {"inviter": inviter, "org": org, "role": body.role}
    if invited:
        token = await issue_token(conn, user_id, "invite", INVITE_LIFETIME, now)
        values |= {"token": token, "days": INVITE_LIFETIME.days, "link": link(settings, token)}
    await account_mail.send(conn, caller.org_id, body.email,
                            "invitation" if invited else "member_added", body.language, now,
                            **values)


@router.patch("/members/{user_id}")
async def change_role(user_id: Id, body: MemberChange, request: Request, caller: Caller,
                      conn: Connection) -> dict[str, Any]:
    """Change a member's role (admins; only owners make or unmake owners), or the tags a
    sub-account is limited to (``monitor_tags``; null makes it a full member)."""
    caller = await _lock(conn, caller)
    caller.require("admin", write=True)
    member = await _member(conn, caller.org_id, user_id)
    role = body.role or member.role
    tags = _unique(body.monitor_tags) if "monitor_tags" in body.model_fields_set \
        else member.monitor_tags
    if tags is not None and role in ("admin", "owner"):
        raise invalid([("monitor_tags", "an admin or owner manages the whole organisation; "
                        "set monitor_tags to null first, or keep the role")])
    if (role, tags) == (member.role, member.monitor_tags):
        return _view(member)
    if "owner" in (member.role, role) and role != member.role:
        _owner_only(caller)
    if member.role == "owner" and role != "owner":
        await _not_last_owner(conn, caller.org_id, "demoted")
    m = a.memberships.c
    await conn.execute(update(a.memberships).where(m.org_id == caller.org_id,
                                                   m.user_id == user_id)
                       .values(role=role, monitor_tags=tags))
    await audit.record(conn, "role_changed", org_id=caller.org_id, user_id=caller.user_id,
                       target=f"user {user_id}", ip=client_ip(request),
                       detail={"from": member.role, "to": role,
                               "monitor_tags": {"from": member.monitor_tags, "to": tags}})
    return _view(await _member(conn, caller.org_id, user_id))


def _unique(tags: list[str] | None) -> list[str] | None:
    return None if tags is None else sorted(set(tags))


@router.delete("/members/{user_id}", status_code=204)
async def remove_member(user_id: Id, request: Request, caller: Caller,
                        conn: Connection) -> None:
    """Remove a member (admins; anyone can leave). Their tokens here are revoked and their
    sessions here end."""
    leaving = user_id == caller.user_id
    caller = await _lock(conn, caller)
    caller.require("viewer" if leaving else "admin", write=True)
    member = await _member(conn, caller.org_id, user_id)
    if member.role == "owner":
        if not leaving:
            _owner_only(caller)
        await _not_last_owner(conn, caller.org_id, "removed")
    await _remove(conn, caller.org_id, user_id)
    await audit.record(conn, "member_removed", org_id=caller.org_id, user_id=caller.user_id,
                       target=f"user {user_id}", ip=client_ip(request),
                       detail={"role": member.role})


async def _remove(conn: AsyncConnection, org_id: int, user_id: int) -> None:
    m, k = a.memberships.c, a.api_tokens.c
    await conn.execute(delete(a.memberships).where(m.org_id == org_id, m.user_id == user_id))
    await conn.execute(update(a.api_tokens).where(
        k.org_id == org_id, k.user_id == user_id, k.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC)))
    await accounts.end_sessions(conn, user_id, org_id)
    user = await accounts.user(conn, user_id)
    if user.password_hash == accounts.UNUSABLE_PASSWORD \
            and await accounts.membership(conn, user_id) is None:
        # Invited here only and never came: the invitation (and the address) is free again.
        await conn.execute(delete(a.users).where(a.users.c.id == user_id))


def _owner_only(caller: Principal) -> None:
    if not caller.can("owner", write=True):
        raise Problem(403, "only an owner can make, change or remove owners")


async def _not_last_owner(conn: AsyncConnection, org_id: int, what: str) -> None:
    m = a.memberships.c
    owners = (await conn.execute(select(func.count()).where(
        m.org_id == org_id, m.role == "owner"))).scalar_one()
    if owners <= 1:
        raise Problem(409, f"the last owner cannot be {what}: make someone else an owner "
                      "first")


async def _lock(conn: AsyncConnection, caller: Principal) -> Principal:
    """Take the organisation's row lock (PostgreSQL; SQLite writes one at a time), then
    read the caller's role again: another change may have moved it while we waited."""
    await conn.execute(select(t.organizations.c.id)
                       .where(t.organizations.c.id == caller.org_id).with_for_update())
    membership = await accounts.membership(conn, caller.user_id, caller.org_id)
    if membership is None:
        raise Problem(403, "you are no longer a member of this organisation")
    return replace(caller, role=membership.role)


def _members() -> Any:
    m, u = a.memberships.c, a.users.c
    return select(m.user_id, m.role, m.monitor_tags, m.created_at, u.email, u.name,
                  u.email_confirmed_at, u.totp_enabled_at, u.password_hash
                  ).join(a.users, u.id == m.user_id)


async def _member(conn: AsyncConnection, org_id: int, user_id: int) -> Any:
    m = a.memberships.c
    row = (await conn.execute(_members().where(m.org_id == org_id,
                                               m.user_id == user_id))).first()
    if row is None:  # someone in another organisation is as absent as nobody
        raise Problem(404, f"no member {user_id}")
    return row


def _view(row: Any) -> dict[str, Any]:
    return {"user_id": row.user_id, "email": row.email, "name": row.name, "role": row.role,
            "monitor_tags": row.monitor_tags,
            "joined_at": row.created_at.isoformat(),
            "email_confirmed": row.email_confirmed_at is not None,
            "two_factor": row.totp_enabled_at is not None,
            "pending": row.password_hash == accounts.UNUSABLE_PASSWORD}
