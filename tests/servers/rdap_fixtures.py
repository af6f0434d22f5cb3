"""Fixtures for RDAP tests; import them explicitly into the test module that uses them.

Each fixture has a ``name=`` so its function name differs from the argument tests take:
the import then does not clash with the arguments (ruff F811)::

    from tests.servers.rdap_fixtures import rdap_outbound_fixture, rdap_server_fixture  # noqa: F401
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dozor.outbound import Outbound
from tests.servers.rdap import RdapServer


@pytest.fixture(name="rdap_server")
async def rdap_server_fixture() -> AsyncIterator[RdapServer]:
    """A running local RDAP server with no domains and an empty bootstrap registry."""
    server = RdapServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture(name="rdap_outbound")
async def rdap_outbound_fixture() -> AsyncIterator[Outbound]:
    """The outbound HTTP sessions a check uses, closed after the test."""
    outbound = Outbound(user_agent="Dozor-test")
    yield outbound
    await outbound.close()
