"""``dozor probe``: run this machine as a remote probe of a Dozor server (issue 7).

    dozor probe --server https://dozor.example.com --token dzp_... --location waw
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from urllib.parse import urlsplit

import click

from dozor.cli_support import load_settings, run
from dozor.probe.agent import Agent, ProbeConfig
from dozor.probe.assignment import Refused


@click.command("probe")
@click.option("--server", help="The Dozor server's URL (default: DOZOR_PROBE_SERVER).")
@click.option("--token", help="This probe's token (default: DOZOR_PROBE_TOKEN, or "
              "DOZOR_PROBE_TOKEN_FILE).")
@click.option("--location", help="The location this probe is meant to be; the server "
              "must agree (default: whichever the token belongs to).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where results wait for delivery (default: DOZOR_DATA_DIR).")
def probe_command(server: str | None, token: str | None, location: str | None,
                  data_dir: Path | None) -> None:
    """Check the monitors the server assigns to this probe's location and report the
    results. Results wait on disk while the server is away; Ctrl-C stops."""
    settings = load_settings()
    from_option = server is not None
    server = server if from_option else settings.probe_server
    if not _is_http_url(server or ""):
        raise click.BadParameter(
            f"must be an http:// or https:// URL, not {server!r}",
            param_hint="'--server'" if from_option else "DOZOR_PROBE_SERVER")
    token = token or settings.probe_token.get_secret_value()
    if not token:
        raise click.UsageError("a probe token is needed: --token or DOZOR_PROBE_TOKEN")
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from dozor.app import configure_checks

    configure_checks(settings)
    config = ProbeConfig(
        server=str(server), token=token, location=location,
        data_dir=data_dir or settings.data_dir,
        sync_interval=settings.probe_sync_interval.total_seconds(),
        max_concurrency=settings.max_concurrency, per_host=settings.per_host_concurrency,
        user_agent=settings.user_agent, allow_private=settings.allows_private_targets)
    click.echo(f"probe of {server}, results kept in {config.data_dir}")
    try:
        run(_until_signalled(Agent(config)))
    except Refused as error:
        raise click.ClickException(f"the probe stopped: {error}") from None


async def _until_signalled(agent: Agent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await agent.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _is_http_url(value: str) -> bool:
    """
    >>> _is_http_url("https://dozor.example.com"), _is_http_url("ftp://x"), _is_http_url("x")
    (True, False, False)
    """
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


GROUPS = (probe_command,)
