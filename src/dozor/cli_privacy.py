"""``dozor privacy``: the operator's side of data-subject requests and of the data
lifecycle. ``export`` writes an organisation's archive (the same as ``GET
/api/v1/account/export``) to a file; ``erase`` carries out a request that came by mail;
``requests`` lists them with their deadlines; ``restrict`` freezes an organisation's
processing; ``breach`` records a breach and notifies the owners of the accounts it hit;
``retention`` runs the retention job once, or with ``--dry-run`` lists what it would
remove."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.cli_format import table
from dozor.cli_support import load_settings, with_database
from dozor.privacy import audit, breach, erasure, export, keys, requests, restriction, rotation
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import tables as t
from dozor.store.db import write_transaction


@click.group("privacy")
def privacy_group() -> None:
    """Answer data-subject requests: export, erasure, restriction; breach notices;
    retention."""


@privacy_group.command("export")
@click.argument("org", type=int)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The zip archive to write.")
@with_database
async def privacy_export(database: AsyncEngine, org: int, output: Path) -> None:
    """Write everything held about organisation ORG to a zip archive."""
    async with database.begin() as connection:
        await _organisation(connection, org)
        await audit.record(connection, "export", org_id=org, user_id=None,
                           target=f"organisation {org}", detail={"by": "operator"})
    written = 0
    partial = output.with_name(output.name + ".partial")  # never a half archive by its name
    with partial.open("wb") as out:
        async with database.connect() as connection:
            async for piece in export.archive(connection, org):
                out.write(piece)
                written += len(piece)
    partial.replace(output)
    click.echo(f"organisation {org}: {written:,} bytes written to {output}")


async def _organisation(connection: AsyncConnection, org: int) -> None:
    found = await connection.scalar(select(t.organizations.c.id)
                                    .where(t.organizations.c.id == org))
    if found is None:
        raise click.ClickException(f"org: no organisation {org} (see `dozor orgs list`)")


@privacy_group.command("erase")
@click.argument("org", type=int)
@click.option("--contact", type=int, help="Erase only this contact of ORG.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_database
async def privacy_erase(database: AsyncEngine, org: int, contact: int | None,
                        yes: bool) -> None:
    """Erase organisation ORG (or one of its contacts) and everything held about it."""
    now = datetime.now(UTC)
    async with database.connect() as connection:
        await _organisation(connection, org)
        if contact is not None and await connection.scalar(select(n.contacts.c.id).where(
                n.contacts.c.id == contact, n.contacts.c.org_id == org)) is None:
            raise click.ClickException(f"contact: organisation {org} has no contact {contact}")
    subject = f"contact {contact} of organisation {org}" if contact else f"organisation {org}"
    if not yes:
        click.confirm(f"Erase {subject} and everything held about it? It cannot be undone",
                      abort=True)
    async with write_transaction(database) as connection:
        request = await requests.request_erasure(connection, org, contact, source="operator",
                                                 requested_by=None, now=now)
    if contact is None:
        report = await erasure.erase_organisation(database, org, now=now, reason="operator",
                                                  request_id=request.id)
    else:
        async with write_transaction(database) as connection:
            report = await erasure.erase_contact(connection, org, contact, now=now,
                                                 reason="operator", request_id=request.id)
    click.echo(f"{subject} erased: {report.total:,} rows removed (request {request.id})")


@privacy_group.command("requests")
@click.option("--all", "everything", is_flag=True, help="Also those already done.")
@with_database
async def privacy_requests(database: AsyncEngine, everything: bool) -> None:
    """Erasure requests: open ones first, with their deadlines (five business days)."""
    r = pv.erasure_requests.c
    query = select(pv.erasure_requests).order_by(r.done_at.is_not(None), r.due_by, r.id)
    if not everything:
        query = query.where(r.done_at.is_(None))
    async with database.connect() as connection:
        rows = (await connection.execute(query)).all()
    now = datetime.now(UTC)

    def state(row: Any) -> str:
        if row.done_at is not None:
            late = " (late)" if row.done_at > row.due_by else ""
            return f"done {row.done_at:%Y-%m-%d %H:%M}{late}"
        return "OVERDUE" if now > row.due_by else "open"

    click.echo(table(["ID", "ORG", "CONTACT", "BY", "REQUESTED", "DUE BY", "STATE"],
                     [[str(row.id), str(row.org_id), str(row.contact_id or "-"), row.source,
                       f"{row.requested_at:%Y-%m-%d %H:%M}", f"{row.due_by:%Y-%m-%d %H:%M}",
                       state(row)] for row in rows]))


@privacy_group.command("restrict")
@click.argument("org", type=int)
@click.option("--lift", is_flag=True, help="Let processing resume.")
@with_database
async def privacy_restrict(database: AsyncEngine, org: int, lift: bool) -> None:
    """Restrict processing for organisation ORG: checks and messages stop, data stays."""
    async with write_transaction(database) as connection:
        await _organisation(connection, org)
        changed = await (restriction.lift(connection, org) if lift else
                         restriction.restrict(connection, org, now=datetime.now(UTC)))
        if changed:
            await audit.record(connection, "restriction_lifted" if lift else "restricted",
                               org_id=org, user_id=None, target=f"organisation {org}",
                               detail={"by": "operator"})
    state = "processing resumed" if lift else "processing restricted"
    click.echo(f"organisation {org}: {state}" + ("" if changed else " (already so)"))


@privacy_group.command("breach")
@click.option("--org", "orgs", type=int, multiple=True, help="An affected organisation.")
@click.option("--all-orgs", is_flag=True, help="Every organisation is affected.")
@click.option("--detected", required=True, type=click.DateTime(
    ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]), help="When the breach was found (UTC).")
@click.option("--summary-file", type=click.File("r", encoding="utf-8"), required=True,
              help="What happened and what it means for them, as the owners will read it.")
@with_database
async def privacy_breach(database: AsyncEngine, orgs: tuple[int, ...], all_orgs: bool,
                         detected: datetime, summary_file: Any) -> None:
    """Record a personal-data breach and notify the owners of every affected account on
    their confirmed channels (the law asks for it within 72 hours of detection)."""
    if bool(orgs) == all_orgs:
        raise click.UsageError("give --org (one or more) or --all-orgs")
    async with write_transaction(database) as connection:
        if all_orgs:
            orgs = tuple((await connection.execute(select(t.organizations.c.id))).scalars())
        try:
            report = await breach.notify(connection, orgs, summary=summary_file.read(),
                                         detected_at=detected.replace(tzinfo=UTC),
                                         now=datetime.now(UTC))
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"breach {report.breach_id}: {sum(report.queued.values())} notices queued to "
               f"the owners of {len(report.queued)} organisation(s)")
    if report.late:
        click.echo("warning: more than 72 hours after detection; the record says so", err=True)
    for org in report.unreachable:
        click.echo(f"warning: organisation {org} has no confirmed owner channel: reach its "
                   "owners another way", err=True)


@privacy_group.command("breaches")
@click.argument("breach_id", type=int, required=False)
@with_database
async def privacy_breaches(database: AsyncEngine, breach_id: int | None) -> None:
    """Breaches recorded, and for each affected organisation when its notices were queued
    and how many the providers have accepted so far."""
    async with database.connect() as connection:
        rows = await breach.status(connection, breach_id)
    click.echo(table(["BREACH", "DETECTED", "ORG", "QUEUED", "WITHIN 72 H", "NOTICES", "SENT"],
                     [[str(row.id), f"{row.detected_at:%Y-%m-%d %H:%M}", str(row.org_id),
                       f"{row.queued_at:%Y-%m-%d %H:%M}",
                       "yes" if row.within_deadline else "no", str(row.messages),
                       str(row.sent)] for row in rows]))


@privacy_group.command("rotate-key")
@click.option("--drop-old", is_flag=True,
              help="After everything is sealed with the new key, remove the old ones.")
@with_database
async def privacy_rotate_key(database: AsyncEngine, drop_old: bool) -> None:
    """Seal everything with a new instance key. Killed midway, run it again: it finishes
    (old keys stay until then). With DOZOR_SECRET_KEY, put the new key first in the
    setting yourself; this seals everything with it."""
    settings = load_settings()
    done = await rotation.rotate(database, settings, drop_old=drop_old)
    ring = keys.current()
    click.echo(f"{'finished the rotation to' if done.resumed else 'rotated to'} key "
               f"{ring.fingerprint} ({ring.source}): {done.total:,} values sealed again")
    if done.dropped:
        click.echo(f"{done.dropped} old key(s) removed; back up the key file now")
    elif drop_old and len(ring.keys) > 1:
        click.echo("everything is sealed with the first key of DOZOR_SECRET_KEY: you may "
                   "now remove the others from the setting")


@privacy_group.command("retention")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@with_database
async def privacy_retention(database: AsyncEngine, dry_run: bool) -> None:
    """Remove what is past its retention window: organisations past their deletion date,
    old messages, expired sessions and codes, old results and rollups (the job
    `dozor serve` runs every DOZOR_RETENTION_INTERVAL)."""
    from dozor.cli_support import load_settings
    from dozor.engine.rollup_job import roll_up
    from dozor.privacy import retention

    now = datetime.now(UTC)
    settings = load_settings()
    if not dry_run:  # raw results must be in the rollups before they go
        await roll_up(database, now, keep_raw=settings.retention_raw)
    report = await retention.run(database, retention.Windows.from_settings(settings),
                                 now, dry_run=dry_run)
    click.echo("would remove:" if dry_run else "removed:")
    for line in report.lines():
        click.echo(f"  {line}")
    if report.failed:
        raise click.ClickException(f"erasure failed for organisations {report.failed}")


GROUPS = (privacy_group,)
