"""Delivery of a probe's results to its server: the oldest waiting batch goes first, and
leaves the buffer only when the server has answered that it stored it.

The protocol (the server's side is ``api.probes``): ``POST <server>/probe/v1/results``
with the probe's bearer token and ``{"results": [...], "dropped": n, "version": v}``
(``dropped``: what the buffer had to make room for, so the server can show the gap;
``version``: this Dozor's, so the server can show which probes lag); ``200`` means every
result of the batch is stored (a result the server already held counts as stored). Any
other answer, or none, leaves the batch where it was; the next try waits longer (1 s
doubling to a minute, with jitter), so a server coming back is not hit by every probe at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

import aiohttp

from dozor import __version__
from dozor.probe.buffer import ResultBuffer

log = logging.getLogger(__name__)
BATCH = 1_000  # results a request; a few hundred KB of JSON
PATH = "/probe/v1/results"


class NotDelivered(Exception):
    """The server did not confirm the batch; it stays in the buffer."""


@dataclass
class Backoff:
    first: float = 1.0
    most: float = 60.0
    failures: int = 0

    def next_wait(self) -> float:
        """
        >>> b = Backoff(first=1, most=8)
        >>> [round(min(b.next_wait(), 99)) >= 0 for _ in range(5)], b.failures
        ([True, True, True, True, True], 5)
        """
        self.failures += 1
        ceiling = min(self.most, self.first * 2 ** (self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not secrecy)

    def reset(self) -> None:
        self.failures = 0

    @property
    def worth_telling(self) -> bool:
        """Whether to log this failure: the first, the tenth, then every hundredth (a
        server away for a day must not fill the log)."""
        return self.failures in (1, 10) or self.failures % 100 == 0


class Sender:
    def __init__(self, buffer: ResultBuffer, session: aiohttp.ClientSession, server: str,
                 token: str, batch: int = BATCH, backoff: Backoff | None = None) -> None:
        self.buffer = buffer
        self.session = session
        self.url = server.rstrip("/") + PATH
        self.headers = {"Authorization": f"Bearer {token}"}
        self.batch = batch
        self.backoff = backoff or Backoff()
        self.wake = asyncio.Event()  # set when results are added
        self._back = asyncio.Event()  # set when the server answers the agent again
        # Held while a batch is on its way: whoever stops the sender takes it first, so a
        # batch the server stored is not cut off before it leaves the buffer (and sent again).
        self.sending = asyncio.Lock()
        self.delivered = 0

    async def send_once(self) -> int:
        """Send the oldest batch; the number of results the server confirmed (0: nothing
        was waiting). Raises NotDelivered."""
        waiting = await self.buffer.oldest(self.batch)
        if not waiting:
            return 0
        body = {"results": [r.model_dump(mode="json") for _, r in waiting],
                "dropped": self.buffer.dropped, "version": __version__}
        try:
            async with self.session.post(self.url, json=body, headers=self.headers) as answer:
                if answer.status != 200:
                    text = (await answer.text())[:200]
                    raise NotDelivered(f"the server answered {answer.status}: {text}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise NotDelivered(f"the server is unreachable: {error!r}") from None
        await self.buffer.acknowledge(waiting[-1][0])
        self.delivered += len(waiting)
        return len(waiting)

    def server_back(self) -> None:
        """The server answered again (the agent's assignment poll): stop waiting out the
        backoff, which may have grown to a minute, and deliver now."""
        if self.backoff.failures:
            self._back.set()

    async def run_forever(self) -> None:
        """Deliver while there is anything to deliver; then wait to be woken."""
        while True:
            try:
                async with self.sending:
                    sent = await self.send_once()
            except NotDelivered as error:
                wait = self.backoff.next_wait()
                if self.backoff.worth_telling:
                    log.warning("%s; %d results wait (next try in %.0f s)", error,
                                self.buffer.size, wait)
                self._back.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._back.wait(), wait)
                continue
            self.backoff.reset()
            if sent < self.batch:
                self.wake.clear()
                if self.buffer.size == 0:
                    await self.wake.wait()
