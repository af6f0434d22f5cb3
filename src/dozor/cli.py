"""The ``dozor`` command: serve, try a check, manage monitors and read what happened.

Every command reads the same settings as the server (``DOZOR_*``), so it works on the
same database; a running server picks up changes within ``DOZOR_RELOAD_INTERVAL``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.cli_format import format_outcome, table, when
from dozor.cli_support import load_settings, run, safe_url, use_keys, with_database
from dozor.config.apply import Plan, apply_plan, make_plan
from dozor.config.specs import SpecError, maintenance_from_row, parse_monitor, spec_from_row
from dozor.config.yamlfile import ConfigFileError, Document, dump, load_file
from dozor.core.rollups import Rollup, combine
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import queries
from dozor.store import tables as t

T = TypeVar("T")


_settings = load_settings
_with_database = with_database
_run = run
_safe_url = safe_url


class _Commands(click.Group):
    """Turns an unreachable database into one line naming it, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OSError, DBAPIError) as error:
            reason = getattr(error, "orig", None) or error
            hint = " (not set up yet, or older than this version: run dozor migrate)" \
                if _missing_table(reason) else ""
            raise click.ClickException(
                f"cannot use the database at {_safe_url(_settings())}: {reason}{hint}"
            ) from None


def _missing_table(reason: BaseException) -> bool:
    """Whether the database lacks a table this version has (SQLite's message, or
    PostgreSQL's undefined_table)."""
    return (getattr(reason, "sqlstate", None) == "42P01"
            or str(reason).startswith("no such table"))


@click.group(cls=_Commands)
@click.version_option(package_name="dozor")
def main() -> None:
    """Dozor: uptime monitoring and alerting."""
    _settings()  # a bad setting stops every command, naming the setting


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from dozor.store.migrate import upgrade

    settings = _settings()
    use_keys(settings)  # migrations seal what earlier versions stored in the clear
    upgrade(settings.resolved_database_url)
    click.echo(f"database is up to date ({_safe_url(settings)})")


@main.command()
@click.option("--host", help="Address to listen on (default: DOZOR_HOST).")
@click.option("--port", type=int, help="Port to listen on (default: DOZOR_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the monitoring engine and the web service."""
    import uvicorn

    from dozor.app import create_app
    from dozor.store.migrate import upgrade

    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_keys(settings)
    _refuse_a_node_too_many(settings)  # before migrating: never migrate a running server's
    upgrade(settings.resolved_database_url)
    click.echo(f"Dozor on http://{host or settings.host}:{port or settings.port} "
               f"({_safe_url(settings)})")
    # Open dashboards hold event streams that never end by themselves: after this many
    # seconds a stop cuts them (browsers reconnect) instead of waiting for them forever.
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port,
                loop="uvloop", log_level=settings.log_level, lifespan="on",
                timeout_graceful_shutdown=5)


def _refuse_a_node_too_many(settings: Settings) -> None:
    """A second server on a SQLite file, or a node of another location: one clear line
    now, rather than a traceback from the web server's start-up."""
    from dozor.engine.cluster import ClusterError, node_for
    from dozor.store.db import create_engine

    async def check() -> None:
        database = create_engine(settings.resolved_database_url)
        try:
            await node_for(database, settings.location, settings.node_lease).preflight()
        finally:
            await database.dispose()
    try:
        run(check())
    except ClusterError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("target", required=False)
@click.option("--kind", help="Check kind (default: from the target's scheme).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A config field of the kind, e.g. -o keyword=Welcome (repeatable).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds.")
def check(target: str | None, kind: str | None, options: tuple[str, ...],
          timeout: float) -> None:
    """Run one check once and print what it found, with timing phases.

    \b
    dozor check https://example.com
    dozor check tcp://db.example.com:5432
    dozor check dns://example.com -o record-type=MX
    """
    from dozor.app import configure_checks
    from dozor.cli_check import run_check

    settings = _settings()
    configure_checks(settings)
    outcome = _run(run_check(target, kind, options, timeout, settings.user_agent))
    click.echo(format_outcome(outcome))
    sys.exit(0 if outcome.ok else 1)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
def apply(file: Path, dry_run: bool) -> None:
    """Create, update and remove monitors to match a YAML file."""
    try:
        document = load_file(file)
    except ConfigFileError as error:
        raise click.ClickException(f"nothing applied\n{error}") from None
    plan = _apply_document(document, dry_run)
    for line in plan.lines():
        click.echo(line)
    verb = "would change" if dry_run else "changed"
    click.echo(f"{len(plan.lines())} {verb}, {plan.unchanged} unchanged"
               if not plan.empty else "nothing to change")


@_with_database
async def _apply_document(database: AsyncEngine, document: Document, dry_run: bool) -> Plan:
    async with database.begin() as connection:
        plan = await make_plan(connection, document)
        if not dry_run:
            await apply_plan(connection, plan)
    return plan


@main.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
def export(file: Path | None) -> None:
    """Write every monitor and maintenance window as YAML (to FILE or standard output)."""
    text = _export_text()
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text)
        click.echo(f"wrote {file}")


@_with_database
async def _export_text(database: AsyncEngine) -> str:
    async with database.connect() as connection:
        monitors = [spec_from_row(r) for r in await store.list_monitors(connection)]
        windows = [maintenance_from_row(r) for r in await store.list_maintenance(connection)]
    return dump(monitors, windows)


@main.group()
def monitors() -> None:
    """List, add, pause, resume and remove monitors."""


@monitors.command("list")
@click.option("--state", help="Only monitors in this state (up, down, pending, ...).")
@click.option("--tag", help="Only monitors with this tag.")
@_with_database
async def monitors_list(database: AsyncEngine, state: str | None, tag: str | None) -> None:
    async with database.connect() as connection:
        rows = await queries.monitor_overview(connection)
    rows = [r for r in rows if (not state or r.state == state) and (not tag or tag in r.tags)]
    click.echo(table(
        ["NAME", "STATE", "SINCE", "LATENCY", "CHECKED", "KIND", "LAST ERROR"],
        [[r.name, r.state + (" (flapping)" if r.flapping else ""), when(r.since),
          f"{r.last_latency_ms:.0f} ms" if r.last_latency_ms is not None else "-",
          when(r.last_checked_at), r.kind, r.last_message or ""] for r in rows],
    ))


@monitors.command("show")
@click.argument("name")
@_with_database
async def monitors_show(database: AsyncEngine, name: str) -> None:
    """A monitor's config, state, push URL and latest results."""
    from dozor.core.types import ErrorCode, ResultStatus

    async with database.connect() as connection:
        row = await _monitor_named(connection, name)
        [overview] = [r for r in await queries.monitor_overview(connection) if r.id == row.id]
        results = await queries.recent_results(connection, row.id, 10)
    click.echo(dump([spec_from_row(row)], []).removeprefix("monitors:\n"), nl=False)
    click.echo(f"state: {overview.state} since {when(overview.since)}")
    if row.push_token:
        click.echo(f"push URL: {_base_url(_settings())}/ping/{row.push_token}"
                   "  (also /fail and /start)")
    click.echo(table(["TIME", "STATUS", "LATENCY", "ERROR"], [
        [when(datetime.fromtimestamp(r.at / 1000, UTC)), ResultStatus(r.status).name.lower(),
         _ms(r.latency_ms), ErrorCode(r.error).name.lower() if r.error else ""]
        for r in results]))


def _base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


@monitors.command("add")
@click.argument("name")
@click.argument("target", required=False)
@click.option("--kind", default="http", show_default=True)
@click.option("--interval", default="60s", show_default=True)
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE")
@_with_database
async def monitors_add(database: AsyncEngine, name: str, target: str | None, kind: str,
                       interval: str, options: tuple[str, ...]) -> None:
    """Add a monitor, e.g. ``dozor monitors add Homepage https://example.com``."""
    from dozor.cli_check import parse_options

    data: dict[str, Any] = {"name": name, "kind": kind, "interval": interval}
    if target:
        data["url"] = target
    data |= parse_options(options)
    try:
        spec = parse_monitor(data)
    except SpecError as error:
        raise click.ClickException(f"nothing added\n{error}") from None
    async with database.begin() as connection:
        if await store.find_monitor(connection, name):
            raise click.ClickException(f"a monitor named {name!r} exists already")
        await store.create_monitor(connection, spec)
    click.echo(f"added {name}")


def _set_paused(paused: bool) -> Callable[..., None]:
    @_with_database
    async def change(database: AsyncEngine, name: str) -> None:
        async with database.begin() as connection:
            row = await _monitor_named(connection, name)
            await store.set_paused(connection, row.id, paused)
        click.echo(f"{'paused' if paused else 'resumed'} {name}")
    return change


monitors.command("pause", help="Stop checking a monitor (and close its incident).")(
    click.argument("name")(_set_paused(True)))
monitors.command("resume", help="Start checking a paused monitor again.")(
    click.argument("name")(_set_paused(False)))


@monitors.command("rm")
@click.argument("name")
@_with_database
async def monitors_rm(database: AsyncEngine, name: str) -> None:
    """Remove a monitor with its results and incidents."""
    async with database.begin() as connection:
        row = await _monitor_named(connection, name)
        await store.delete_monitor(connection, row.id)
    click.echo(f"removed {name}")


async def _monitor_named(connection: Any, name: str) -> Any:
    row = await store.find_monitor(connection, name)
    if row is None:
        raise click.ClickException(f"no monitor named {name!r}")
    return row


@main.group()
def incidents() -> None:
    """Read incidents."""


@incidents.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only incidents still open.")
@click.option("--monitor", help="Only this monitor's incidents.")
@click.option("--limit", default=50, show_default=True)
@_with_database
async def incidents_list(database: AsyncEngine, open_only: bool, monitor: str | None,
                         limit: int) -> None:
    async with database.connect() as connection:
        monitor_id = (await _monitor_named(connection, monitor)).id if monitor else None
        rows = await queries.incident_list(connection, open_only, monitor_id, limit)
    now = datetime.now(UTC)
    click.echo(table(
        ["ID", "MONITOR", "OPENED", "CLOSED", "DURATION", "CAUSE"],
        [[str(r.id), r.monitor_name, when(r.opened_at),
          when(r.closed_at) if r.closed_at else "open",
          _duration((r.closed_at or now) - r.opened_at), r.cause] for r in rows],
    ))


@main.command()
@click.argument("name")
@click.option("--since", "start", type=click.DateTime(), help="Start of a custom range (UTC).")
@click.option("--until", "end", type=click.DateTime(), help="End of a custom range (UTC).")
@click.option("--by-location", is_flag=True,
              help="Each location's figures too, before all of them together.")
@_with_database
async def uptime(database: AsyncEngine, name: str, start: datetime | None,
                 end: datetime | None, by_location: bool) -> None:
    """Uptime and latency of a monitor: last 24 h, 7 d, 30 d, 365 d, or a custom range."""
    now = datetime.now(UTC)
    if start:
        ranges = [("custom", start.replace(tzinfo=UTC),
                   end.replace(tzinfo=UTC) if end else now)]
    else:
        ranges = [(label, now - timedelta(days=days), now)
                  for label, days in (("24h", 1), ("7d", 7), ("30d", 30), ("365d", 365))]
    async with database.connect() as connection:
        row = await _monitor_named(connection, name)
        figures = [(label, await queries.uptime_by_location(connection, row.id, a, b))
                   for label, a, b in ranges]
        names: dict[int, str] = {place.id: place.name for place in await connection.execute(
            select(t.locations.c.id, t.locations.c.name))}
    lines = []
    for label, places in figures:
        if by_location:  # the combined figures add these up (store.queries)
            lines += [[label, names.get(location_id, f"#{location_id}"), *_figures(r)]
                      for location_id, r in sorted(places.items(),
                                                   key=lambda p: names.get(p[0], ""))]
        combined = _figures(combine(places.values()))
        lines.append([label, "all", *combined] if by_location else [label, *combined])
    click.echo(table(["PERIOD", *(["LOCATION"] if by_location else []), "UPTIME", "CHECKS",
                      "AVG", "P95", "P99"], lines))


def _figures(r: Rollup) -> list[str]:
    return [f"{r.uptime:.3%}" if r.uptime is not None else "-", str(r.checks),
            _ms(r.latency_avg), _ms(r.histogram.quantile(0.95)), _ms(r.histogram.quantile(0.99))]


@main.command()
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@_with_database
async def retention(database: AsyncEngine, dry_run: bool) -> None:
    """Remove results, rollups and incidents past their retention windows."""
    from dozor.engine.rollup_job import roll_up
    from dozor.store.retention import Windows, prune

    s = _settings()
    if not dry_run:  # raw results must be in the rollups before they go
        await roll_up(database, datetime.now(UTC), keep_raw=s.retention_raw)
    report = await prune(database, Windows(s.retention_raw, s.retention_hourly,
                                           s.retention_daily), datetime.now(UTC), dry_run)
    click.echo("would remove:" if dry_run else "removed:")
    for line in report.lines():
        click.echo(f"  {line}")


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _add_notify_commands() -> None:
    from dozor import cli_nodes, cli_notify, cli_orgs, cli_privacy, cli_probe, cli_probes

    for group in (*cli_notify.GROUPS, *cli_orgs.GROUPS, *cli_privacy.GROUPS,
                  *cli_probe.GROUPS, *cli_probes.GROUPS, *cli_nodes.GROUPS):
        main.add_command(group)


_add_notify_commands()
