"""Check kinds. Importing this package registers every kind (see ``base.register``)."""

from dozor.checks.base import (
    CheckConfig,
    CheckContext,
    get_check,
    kinds,
    parse_config,
    receives_pings,
)

__all__ = ["CheckConfig", "CheckContext", "get_check", "kinds", "parse_config", "receives_pings"]
