"""Every check module registers its kind, and every registered kind has its own tests."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import dozor.checks
from dozor.checks import get_check, kinds
from dozor.checks.base import CheckConfig
from dozor.config.specs import COMMON_KEYS

# Modules that serve kinds but are not kinds themselves.
HELPERS = {"base", "rdap", "_net", "_certs", "http_config"}
TESTS = Path(__file__).parent


def kind_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(dozor.checks.__path__) if m.name not in HELPERS]


def test_every_check_module_is_imported_by_the_package_and_registers_its_kind() -> None:
    registered = set(kinds())
    for name in kind_modules():
        module = importlib.import_module(f"dozor.checks.{name}")
        classes = [v for v in vars(module).values()
                   if isinstance(v, type) and getattr(v, "kind", None) in registered
                   and v.__module__ == module.__name__]
        assert classes, f"dozor.checks.{name} registers no kind (or is not imported)"


def test_no_kind_has_a_field_that_a_monitor_has_itself() -> None:
    # Monitors are flat mappings: a kind's `name` would shadow the monitor's name.
    for kind in kinds():
        config = get_check(kind).Config
        keys = {f.alias or n for n, f in config.model_fields.items()} | set(config.model_fields)
        assert not keys & COMMON_KEYS, f"{kind}: {sorted(keys & COMMON_KEYS)}"


def test_every_registered_kind_has_a_config_and_tests() -> None:
    for kind in kinds():
        if kind == "scripted":  # the tests' own fake
            continue
        assert issubclass(get_check(kind).Config, CheckConfig)
        assert (TESTS / f"test_{kind}.py").exists(), f"no tests/checks/test_{kind}.py"
