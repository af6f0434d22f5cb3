"""``dozor privacy``: the operator's side of data-subject requests. ``export`` writes an
organisation's archive (the same as ``GET /api/v1/account/export``) to a file."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.cli_support import with_database
from dozor.privacy import audit, export
from dozor.store import tables as t


@click.group("privacy")
def privacy_group() -> None:
    """Answer data-subject requests: export."""


@privacy_group.command("export")
@click.argument("org", type=int)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The zip archive to write.")
@with_database
async def privacy_export(database: AsyncEngine, org: int, output: Path) -> None:
    """Write everything held about organisation ORG to a zip archive."""
    async with database.begin() as connection:
        found = (await connection.execute(select(t.organizations.c.id)
                                          .where(t.organizations.c.id == org))).first()
        if found is None:
            raise click.ClickException(f"org: no organisation {org} (see `dozor orgs list`)")
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


@privacy_group.command("retention")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@with_database
async def privacy_retention(database: AsyncEngine, dry_run: bool) -> None:
    """Remove what is past its retention window: organisations past their deletion date,
    old messages, expired sessions and codes, old results and rollups (the job
    `dozor serve` runs every DOZOR_RETENTION_INTERVAL)."""
    from datetime import UTC, datetime

    from dozor.cli_support import load_settings
    from dozor.engine.rollup_job import roll_up
    from dozor.privacy import retention

    now = datetime.now(UTC)
    if not dry_run:  # raw results must be in the rollups before they go
        await roll_up(database, now)
    report = await retention.run(database, retention.Windows.from_settings(load_settings()),
                                 now, dry_run=dry_run)
    click.echo("would remove:" if dry_run else "removed:")
    for line in report.lines():
        click.echo(f"  {line}")
    if report.failed:
        raise click.ClickException(f"erasure failed for organisations {report.failed}")


GROUPS = (privacy_group,)
