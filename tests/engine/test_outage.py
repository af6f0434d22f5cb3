"""The story a newcomer follows, with real parts: an HTTPS server, the http check, the
engine and the database. The server stops: PENDING, then DOWN with an incident. It comes
back: UP, and the incident closes with its duration."""

from __future__ import annotations

import trustme
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.apply import apply_plan, make_plan
from dozor.config.yamlfile import load_text
from dozor.core.phases import unpack
from dozor.engine.engine import Engine
from dozor.store import tables as t
from tests.engine.conftest import eventually
from tests.servers.http import LocalHttpServer, server_ssl_context


async def states(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        query = (select(t.state_changes.c.current).order_by(t.state_changes.c.id))
        return list((await connection.execute(query)).scalars())


async def test_an_https_site_goes_down_and_comes_back(
    running: Engine, engine: AsyncEngine, tmp_path: object
) -> None:
    ca = trustme.CA()
    ca_file = f"{tmp_path}/ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    site = LocalHttpServer(ssl_context=server_ssl_context(ca.issue_cert("127.0.0.1")))
    await site.start()
    site.serve("/health", json={"status": "ok"})
    document = load_text(f"""
monitors:
  - name: shop
    kind: http
    url: {site.url("/health")}
    ca: {ca_file}
    interval: 1s
    retry-interval: 1s
    timeout: 900ms
    confirm-after: 2
    conditions: ['[BODY].status == ok', '[CERTIFICATE_EXPIRATION] > 14d']
""")
    async with engine.begin() as connection:
        await apply_plan(connection, await make_plan(connection, document))
    try:
        await eventually(lambda: _last_is(engine, "up"))
        async with engine.connect() as connection:  # the certificate's end, for the page
            expires = (await connection.execute(select(t.monitor_state.c.expires_at))
                       ).scalar_one()
        assert expires is not None and expires.year > 2026
        async with engine.connect() as connection:  # phases kept with every result
            packed = (await connection.execute(select(t.results.c.phases))).scalars().all()
        assert packed and all(value is not None for value in packed)
        assert all(unpack(value)["tls"] > 0 for value in packed)
        await site.close()
        await eventually(lambda: _last_is(engine, "down"))
        assert await states(engine) == ["up", "pending", "down"]
        await site.start()
        site.serve("/health", json={"status": "ok"})
        await eventually(lambda: _last_is(engine, "up"))
    finally:
        await site.close()
    async with engine.connect() as connection:
        [incident] = (await connection.execute(select(t.incidents))).all()
    assert incident.resolution == "recovered" and incident.closed_at > incident.opened_at
    assert "connect" in incident.cause.lower() or "refused" in incident.cause.lower()


async def _last_is(engine: AsyncEngine, state: str) -> bool:
    found = await states(engine)
    return bool(found) and found[-1] == state
