"""``dozor contacts``, ``dozor points``, ``dozor channels`` and ``dozor messages``: who gets
alerts, how they confirm, what Dozor sends through, and the delivery log."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.cli_format import table, when
from dozor.cli_support import load_settings, with_database
from dozor.notify import channels as channel_registry
from dozor.notify import consent, contacts
from dozor.notify.channels.base import channel_class
from dozor.notify.points import POINT_KINDS
from dozor.store import notify_tables as n

ORG = 1  # the default organisation, until accounts exist


def _problem(error: ValidationError) -> click.ClickException:
    lines = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors()]
    return click.ClickException("; ".join(lines))


@click.group("contacts")
def contacts_group() -> None:
    """People who receive alerts."""


@contacts_group.command("add")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--language", default="en", show_default=True, help="en or pl.")
@click.option("--owner", is_flag=True, help="Hears when a point or the account has trouble.")
@with_database
async def contacts_add(database: AsyncEngine, name: str, timezone: str, language: str,
                       owner: bool) -> None:
    try:
        spec = contacts.ContactSpec(name=name, timezone=timezone, language=language,
                                    is_owner=owner)
    except ValidationError as error:
        raise _problem(error) from None
    async with database.begin() as connection:
        if await contacts.find_contact(connection, ORG, name) is not None:
            raise click.ClickException(f"name: a contact named {name!r} exists")
        await contacts.add_contact(connection, ORG, spec, datetime.now(UTC))
    click.echo(f"contact {name} added; add points with `dozor points add {name} KIND ADDRESS`")


@click.group("points")
def points_group() -> None:
    """Contact points (email, sms, telegram, ...): add, confirm, list, remove."""


@points_group.command("add")
@click.argument("contact")
@click.argument("kind", type=click.Choice(sorted(POINT_KINDS)))
@click.argument("address", default="")
@click.option("--events", default="down,up,expiry", show_default=True)
@click.option("--escalation", type=int, default=0, help="Minutes after the incident opens.")
@click.option("--priority", type=int, default=0, help="Fail-over order (lower first).")
@click.option("--hours", help='Active hours as JSON: {"days": [0,1,2,3,4], "start": '
              '"08:00", "end": "18:00"}.')
@click.option("--outside-hours", type=click.Choice(["hold", "next"]), default="hold")
@click.option("--secret", help="Webhook signing secret.")
@with_database
async def points_add(database: AsyncEngine, contact: str, kind: str, address: str,
                     events: str, escalation: int, priority: int, hours: str | None,
                     outside_hours: str, secret: str | None) -> None:
    """Add an unconfirmed point, then send its confirmation (`dozor points verify ID`)."""
    try:
        spec = contacts.PointSpec(
            kind=kind, address=address, events=[e for e in events.split(",") if e],
            escalation_minutes=escalation, priority=priority, outside_hours=outside_hours,
            active_hours=json.loads(hours) if hours else None, secret=secret)
    except ValidationError as error:
        raise _problem(error) from None
    except json.JSONDecodeError as error:
        raise click.ClickException(f"hours: not JSON ({error})") from None
    async with database.begin() as connection:
        contact_id = await contacts.find_contact(connection, ORG, contact)
        if contact_id is None:
            raise click.ClickException(f"contact: no contact named {contact!r}")
        if spec.address and await contacts.find_point(connection, ORG, spec.kind,
                                                      spec.address) is not None:
            raise click.ClickException(f"address: a {kind} point with this address exists")
        point_id = await contacts.add_point(connection, ORG, contact_id, spec,
                                            datetime.now(UTC))
    click.echo(f"point {point_id} added (unconfirmed); send its code: "
               f"dozor points verify {point_id}")


@points_group.command("verify")
@click.argument("point_id", type=int)
@with_database
async def points_verify(database: AsyncEngine, point_id: int) -> None:
    """Send a confirmation code to the point (or show the Telegram deep link)."""
    settings = load_settings()
    try:
        async with database.begin() as connection:
            started = await consent.start_verification(connection, point_id,
                                                       datetime.now(UTC), settings.public_url)
            link = (await consent.deep_link_url(connection, started.deep_link_token)
                    if started.deep_link_token else None)
    except consent.ConsentError as error:
        raise click.ClickException(str(error)) from None
    if started.method == "deep_link":
        click.echo(f"open this link in Telegram and press Start: {link}")
    else:
        click.echo(f"code sent; confirm with: dozor points confirm {point_id} CODE "
                   f"(valid until {started.expires_at:%H:%M} UTC)")


@points_group.command("confirm")
@click.argument("point_id", type=int)
@click.argument("code")
@with_database
async def points_confirm(database: AsyncEngine, point_id: int, code: str) -> None:
    """Confirm a point with the code its holder received."""
    refused = None
    async with database.begin() as connection:
        try:
            await consent.confirm_code(connection, point_id, code, datetime.now(UTC),
                                       source="cli")
        except consent.ConsentError as error:
            refused = error  # caught inside: the transaction commits, so a wrong try counts
    if refused is not None:
        raise click.ClickException(str(refused))
    click.echo(f"point {point_id} confirmed")


@points_group.command("list")
@with_database
async def points_list(database: AsyncEngine) -> None:
    async with database.connect() as connection:
        rows = await contacts.list_points(connection, ORG)
    click.echo(table(["ID", "CONTACT", "KIND", "ADDRESS", "EVENTS", "ESC", "STATUS"], [
        [str(r["id"]), r["contact"], r["kind"], r["address"], ",".join(r["events"]),
         f"{r['escalation_minutes']}m", _point_status(r)] for r in rows]))


def _point_status(row: dict[str, Any]) -> str:
    status = contacts.point_status(row)
    if status == "opted_out":
        return f"opted out {when(row['opted_out_at'])}"
    return f"failing: {row['failing_reason']}" if status == "failing" else status


@points_group.command("rm")
@click.argument("point_id", type=int)
@with_database
async def points_rm(database: AsyncEngine, point_id: int) -> None:
    async with database.begin() as connection:
        if not await contacts.remove_point(connection, ORG, point_id):
            raise click.ClickException(f"point: no point {point_id}")
    click.echo(f"point {point_id} removed")


@click.group("channels")
def channels_group() -> None:
    """What messages go out through: SMTP, SMS providers, bots. Restart the server after
    a change."""


@channels_group.command("add")
@click.argument("name")
@click.argument("kind", type=click.Choice(channel_registry.channel_kinds()))
@click.option("--set", "values", multiple=True, metavar="KEY=VALUE",
              help="A config field, e.g. --set host=smtp.example.com (repeat).")
@click.option("--priority", type=int, default=0, help="Lower is tried first.")
@with_database
async def channels_add(database: AsyncEngine, name: str, kind: str,
                       values: tuple[str, ...], priority: int) -> None:
    config: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(f"--set {item}: expected KEY=VALUE")
        config[key.strip()] = _value(value)
    try:
        channel_class(kind).Config.model_validate(config)
    except ValidationError as error:
        raise _problem(error) from None
    async with database.begin() as connection:
        await connection.execute(insert(n.notify_channels).values(
            name=name, kind=kind, config=config, priority=priority, enabled=True,
            callback_token=secrets.token_urlsafe(24), created_at=datetime.now(UTC)))
        channel_id = (await connection.execute(select(n.notify_channels.c.id)
                                               .where(n.notify_channels.c.name == name))
                      ).scalar_one()
        token = (await connection.execute(select(n.notify_channels.c.callback_token)
                                          .where(n.notify_channels.c.id == channel_id))
                 ).scalar_one()
    base = load_settings().public_url.rstrip("/") or "<public URL>"
    click.echo(f"channel {name} ({kind}) added; provider callbacks: "
               f"{base}/hooks/{channel_id}/{token}")


def _value(text: str) -> Any:
    """A --set value: JSON for objects and lists (WhatsApp's templates), else the text."""
    if text.strip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise click.ClickException(f"--set {text}: not valid JSON ({error})") from None
    return text


@channels_group.command("list")
@with_database
async def channels_list(database: AsyncEngine) -> None:
    async with database.connect() as connection:
        rows = (await connection.execute(select(n.notify_channels)
                                         .order_by(n.notify_channels.c.priority))).all()
    click.echo(table(["ID", "NAME", "KIND", "PRIORITY", "STATUS"], [
        [str(r.id), r.name, r.kind, str(r.priority),
         f"failing: {r.failing_reason}" if r.failing_since else
         ("enabled" if r.enabled else "disabled")] for r in rows]))


@click.group("messages")
def messages_group() -> None:
    """The delivery log."""


@messages_group.command("list")
@click.option("--limit", type=int, default=30, show_default=True)
@with_database
async def messages_list(database: AsyncEngine, limit: int) -> None:
    m = n.messages.c
    async with database.connect() as connection:
        rows = (await connection.execute(select(n.messages).order_by(m.id.desc())
                                         .limit(limit))).all()
    click.echo(table(["ID", "CREATED", "EVENT", "POINT", "STATUS", "TRIES", "PARTS", "SUBJECT"],
                     [[str(r.id), when(r.created_at), r.event, str(r.point_id or "-"),
                       r.status + ("" if r.tracked else " (no tracking)"), str(r.attempts),
                       str(r.parts or "-"), r.subject[:50]] for r in rows]))


@messages_group.command("show")
@click.argument("message_id", type=int)
@with_database
async def messages_show(database: AsyncEngine, message_id: int) -> None:
    """One message and every attempt and receipt."""
    m, e = n.messages.c, n.message_events.c
    async with database.connect() as connection:
        row = (await connection.execute(select(n.messages).where(m.id == message_id))).first()
        if row is None:
            raise click.ClickException(f"message: no message {message_id}")
        log = (await connection.execute(select(n.message_events)
                                        .where(e.message_id == message_id)
                                        .order_by(e.id))).all()
    click.echo(f"{row.event} to point {row.point_id}: {row.status}, {row.attempts} attempts, "
               f"provider id {row.provider_id or '-'}, parts {row.parts or '-'}, "
               f"cost {row.cost if row.cost is not None else '-'}")
    click.echo(f"subject: {row.subject}")
    click.echo(table(["TIME", "EVENT", "CHANNEL", "MS", "DETAIL"], [
        [when(ev.at), ev.kind, str(ev.channel_id or "-"), str(ev.duration_ms or "-"),
         (ev.detail or "") + (f" [{ev.provider_code}]" if ev.provider_code else "")]
        for ev in log]))


GROUPS = (contacts_group, points_group, channels_group, messages_group)
