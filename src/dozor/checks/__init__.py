"""Check kinds. Importing this package registers every kind (see ``base.register``)."""

# One line per kind: importing the module registers it.
from dozor.checks import dns, domain, heartbeat, http, ping, tcp, tls  # noqa: F401
from dozor.checks.base import (
    CheckConfig,
    CheckContext,
    get_check,
    kinds,
    parse_config,
    receives_pings,
)

__all__ = ["CheckConfig", "CheckContext", "get_check", "kinds", "parse_config", "receives_pings"]
