"""Every channel module registers its kind, every kind has its tests, and every kind of
contact point can be reached by some channel."""

from __future__ import annotations

import pkgutil
from pathlib import Path

from dozor.notify import channels
from dozor.notify.channels.base import ChannelConfig, channel_class, channel_kinds
from dozor.notify.points import POINT_KINDS

TESTS = Path(__file__).parent


def test_every_channel_module_registers_a_kind_of_its_name() -> None:
    modules = {m.name for m in pkgutil.iter_modules(channels.__path__)
               if not m.name.startswith("_") and m.name != "base"}
    assert modules == set(channel_kinds())


def test_every_channel_kind_has_its_tests() -> None:
    missing = [k for k in channel_kinds() if not (TESTS / f"test_{k}.py").exists()]
    assert missing == []


def test_every_kind_of_point_is_reachable_and_every_channel_reaches_a_known_kind() -> None:
    reached = {channel_class(k).point_kind for k in channel_kinds()}
    assert reached == set(POINT_KINDS)


def test_every_channel_declares_a_config_model() -> None:
    for kind in channel_kinds():
        assert issubclass(channel_class(kind).Config, ChannelConfig), kind
