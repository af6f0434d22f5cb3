"""Fixtures for the tests on separate hosts: one LAN of network namespaces and one Dozor
installation on it per module (starting the server and three probes costs seconds, so
a module tells its story in steps, and every step leaves the paths as it found them).

Where namespaces cannot be made (not root, no iproute2, refused by the container) the
tests skip and say why; with DOZOR_TEST_REQUIRE_NETNS=1 (CI sets it) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dozor.privacy import keys
from tests.netns import network
from tests.netns.network import Lan
from tests.netns.site import ADDRESSES, LOCATIONS, Site, install

REQUIRE_NETNS = os.environ.get("DOZOR_TEST_REQUIRE_NETNS") == "1"
OUTCOME = pytest.StashKey[pytest.TestReport]()  # a test's own outcome, for its teardown


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    reason = network.unavailable()
    if reason is not None:
        if REQUIRE_NETNS:
            pytest.fail(reason)
        pytest.skip(reason)
    network.sweep_leftovers()
    lan = Lan()
    try:
        yield lan
    finally:
        lan.close()


@pytest.fixture(scope="module")
def site(lan: Lan, sqlite_template: Path, keyring: keys.Keyring,
         tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The hosts with their processes running, and the monitor ``shop`` (id 1) of the
    target's ``/health`` checked from the three locations."""
    site = Site(lan, tmp_path_factory.mktemp("netns"),
                ",".join(key.decode() for key in keyring.keys))
    for role in ("server", "mail", "target", *LOCATIONS):
        site.hosts[role] = lan.add(role, ADDRESSES[role])
    site.start_target()
    site.start_mail()
    tokens = asyncio.run(install(site, sqlite_template))
    assert asyncio.run(site.add_monitor("shop", "/health")) == 1
    site.start_server()
    site.start_probes(tokens)
    return site


@pytest.fixture(autouse=True)
def paths_restored(request: pytest.FixtureRequest, lan: Lan) -> Iterator[None]:
    """Every test starts with every path open, whatever the one before did or failed at;
    a failed test's report ends with what the processes logged."""
    yield
    lan.restore_all()
    report = request.node.stash.get(OUTCOME, None)
    if report is not None and report.failed and "site" in request.fixturenames:
        site: Site = request.getfixturevalue("site")
        print(site.logs())  # pytest shows it with the failure


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    if call.when == "call":
        item.stash[OUTCOME] = report
    return report
