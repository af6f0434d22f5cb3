"""A dispatcher that dies: claims the due messages, optionally sends them, then waits to
be killed before recording anything. Run by ``test_crash.py`` as a separate process::

    python -m tests.notify.crash_child DATABASE_URL after-claim|after-send
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from dozor.notify import channels as _channels  # noqa: F401  (registers the kinds)
from dozor.notify.channelset import load_channels
from dozor.notify.delivery import RetryPolicy, compose, deliver
from dozor.notify.dispatcher import _context, _groups
from dozor.notify.outbox import claim
from dozor.outbound import Outbound
from dozor.privacy import keys
from dozor.store.db import create_engine

LEASE = timedelta(seconds=1)


async def main(database_url: str, phase: str) -> None:
    database = create_engine(database_url)
    # The tests' instance key (the parent's keyring), which wrapped the data keys.
    keys.install(keys.Keyring(keys.parse_keys(os.environ[keys.SETTING], keys.SETTING),
                              keys.SETTING))
    async with database.connect() as connection:
        await keys.load_data_keys(connection)
    outbound = Outbound("dozor-test")

    async def ignore(_: object) -> None:
        return None
    channels = await load_channels(database, outbound, ignore, "")
    now = datetime.now(UTC)
    async with database.begin() as connection:
        claimed = await claim(connection, now, LEASE, 100)
        context = await _context(connection, claimed, now)
    if phase == "after-send":
        for group in _groups(claimed):
            point = context.point(group[0])
            assert point is not None
            message = compose(group, point, "")
            await deliver(group, point, channels.for_point(point.kind), message,
                          RetryPolicy(), now)
    print(f"{phase} {len(claimed)}", flush=True)
    await asyncio.sleep(3600)  # killed here, before recording anything


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
