"""``dozor check``: turn a target like ``https://…`` or ``tcp://host:port`` into a config
of the right kind, run it once, and return the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from dozor.checks import CheckContext, get_check, parse_config
from dozor.core.types import Outcome
from dozor.outbound import Outbound


def _host_port(default_port: int | None) -> Callable[[str], dict[str, Any]]:
    def fields(target: str) -> dict[str, Any]:
        parts = urlsplit(target)
        found: dict[str, Any] = {"host": parts.hostname}
        port = parts.port or default_port
        if port is not None:
            found["port"] = port
        return found
    return fields


# scheme -> (kind, how the target becomes config fields)
SCHEMES: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "http": ("http", lambda target: {"url": target}),
    "https": ("http", lambda target: {"url": target}),
    "tcp": ("tcp", _host_port(None)),
    "tls": ("tls", _host_port(443)),
    "ping": ("ping", _host_port(None)),
    "icmp": ("ping", _host_port(None)),
    "dns": ("dns", lambda target: {"query-name": urlsplit(target).netloc}),
    "domain": ("domain", lambda target: {"domain": urlsplit(target).netloc}),
}


def parse_options(options: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as YAML scalars (numbers, true/false, lists)."""
    import yaml

    found: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="-o")
        found[key.strip()] = yaml.safe_load(value) if value else ""
    return found


def config_for(target: str | None, kind: str | None, options: tuple[str, ...]
               ) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {}
    if target:
        scheme = urlsplit(target).scheme.lower()
        if scheme not in SCHEMES:
            if kind is None:
                known = ", ".join(f"{s}://" for s in SCHEMES)
                raise click.BadParameter(f"give a URL starting with one of {known}, "
                                         "or --kind", param_hint="TARGET")
        else:
            inferred, fields = SCHEMES[scheme]
            kind = kind or inferred
            data |= fields(target)
    if kind is None:
        raise click.UsageError("give a TARGET or --kind")
    return kind, data | parse_options(options)


async def run_check(target: str | None, kind: str | None, options: tuple[str, ...],
                    seconds: float, user_agent: str) -> Outcome:
    kind, data = config_for(target, kind, options)
    try:
        config = parse_config(kind, data)
    except KeyError as error:
        raise click.BadParameter(str(error.args[0]), param_hint="--kind") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in error.errors())
        raise click.UsageError(f"invalid {kind} check: {problems}") from None
    outbound = Outbound(user_agent)
    try:
        return await get_check(kind).run(config, CheckContext(timeout=seconds,
                                                              outbound=outbound))
    finally:
        await outbound.close()
