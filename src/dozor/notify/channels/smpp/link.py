"""One SMPP transceiver session over TCP (or TLS): bind, window, keep-alive, unbind.

:meth:`SmppLink.open` connects and binds, or raises :class:`BindRejected` with the SMSC's
status (or OSError / TimeoutError). A bound link then

- sends requests with a bounded window: up to ``window`` submit_sm may wait for their
  responses at once, the next waits for a slot;
- sends enquire_link every ``enquire_link_interval`` seconds and closes itself when no
  answer comes within ``response_timeout`` (a link the network silently lost);
- answers the SMSC's enquire_link and unbind, and generic_nack to anything it cannot serve;
- hands every deliver_sm to ``on_deliver`` and answers with the status that returns.

When the link goes down, for whatever reason, ``closed`` is set, ``reason`` says why and
every request still waiting fails with :class:`LinkClosed`. Reconnecting is the owner's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dozor.notify.channels.smpp import pdu
from dozor.notify.channels.smpp.pdu import Pdu, PduError

log = logging.getLogger(__name__)

DeliverHandler = Callable[[Pdu], Awaitable[int]]  # returns the deliver_sm_resp status


class LinkClosed(Exception):
    """The link went down before the SMSC answered."""


class BindRejected(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the SMSC refused the bind: {pdu.status_name(status)}")
        self.status = status


@dataclass(frozen=True, slots=True)
class LinkSettings:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str
    ssl: ssl.SSLContext | None
    window: int
    enquire_link_interval: float
    response_timeout: float


class SmppLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 settings: LinkSettings, on_deliver: DeliverHandler) -> None:
        self._reader = reader
        self._writer = writer
        self._settings = settings
        self._on_deliver = on_deliver
        self._window = asyncio.Semaphore(settings.window)
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        self.reason = ""

    @classmethod
    async def open(cls, settings: LinkSettings, on_deliver: DeliverHandler) -> SmppLink:
        async with asyncio.timeout(settings.response_timeout):
            reader, writer = await asyncio.open_connection(
                settings.host, settings.port, ssl=settings.ssl,
                server_hostname=settings.host if settings.ssl else None)
        link = cls(reader, writer, settings, on_deliver)
        try:
            async with asyncio.timeout(settings.response_timeout):
                await link._bind()
        except BaseException:
            link._shut("bind failed")
            await link.wait_closed()
            raise
        link._spawn(link._read_loop())
        link._spawn(link._keep_alive())
        return link

    async def _bind(self) -> None:
        s = self._settings
        sequence = self._next_sequence()
        self._writer.write(pdu.bind_transceiver(
            sequence, system_id=s.system_id, password=s.password, system_type=s.system_type))
        await self._writer.drain()
        while True:
            answer = await pdu.read_pdu(self._reader)
            if answer.command_id in (pdu.BIND_TRANSCEIVER_RESP, pdu.GENERIC_NACK):
                break
            # Before the bind_resp a well-behaved SMSC sends nothing; tolerate it, answer none.
        if answer.status != pdu.ROK or answer.command_id == pdu.GENERIC_NACK:
            raise BindRejected(answer.status or pdu.RSYSERR)

    async def request(self, encode: Callable[[int], bytes], *, windowed: bool = True) -> Pdu:
        """Send a request built by ``encode(sequence)`` and wait for its response."""
        async with self._window if windowed else contextlib.nullcontext():
            if self.closed.is_set():
                raise LinkClosed(self.reason)
            sequence = self._next_sequence()
            answer: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
            self._pending[sequence] = answer
            try:
                self._writer.write(encode(sequence))
                await self._writer.drain()
                return await answer
            except (OSError, RuntimeError) as error:  # RuntimeError: a closing transport
                self._shut(f"cannot write: {error}")
                raise LinkClosed(self.reason) from None
            finally:
                self._pending.pop(sequence, None)

    async def unbind(self) -> None:
        """Say goodbye (briefly waiting for unbind_resp) and close."""
        if not self.closed.is_set():
            with contextlib.suppress(LinkClosed, TimeoutError):
                async with asyncio.timeout(self._settings.response_timeout):
                    await self.request(lambda seq: pdu.header_only(pdu.UNBIND, seq),
                                       windowed=False)
        self._shut("unbound")
        await self.wait_closed()

    async def wait_closed(self) -> None:
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            async with asyncio.timeout(self._settings.response_timeout):
                await self._writer.wait_closed()

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % pdu.MAX_SEQUENCE + 1
        return self._sequence

    def abandon(self, reason: str) -> None:
        """Close the link without unbinding: the SMSC no longer counts it as bound."""
        self._shut(reason)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _shut(self, reason: str) -> None:
        if self.closed.is_set():
            return
        log.info("SMPP link to %s:%s closed: %s", self._settings.host, self._settings.port,
                 reason)
        self.reason = reason
        self.closed.set()
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(LinkClosed(reason))
        self._writer.close()

    def _send(self, data: bytes) -> None:
        if not self.closed.is_set():
            self._writer.write(data)

    async def _read_loop(self) -> None:
        try:
            while True:
                self._dispatch(await pdu.read_pdu(self._reader))
        except asyncio.IncompleteReadError:
            self._shut("the SMSC closed the connection")
        except (OSError, PduError) as error:
            self._shut(f"{type(error).__name__}: {error}")

    def _dispatch(self, message: Pdu) -> None:
        if message.command_id & pdu.RESPONSE_BIT:
            answer = self._pending.get(message.sequence)
            if answer is not None and not answer.done():
                answer.set_result(message)
            return  # a late answer to a request that gave up waiting: nothing to do
        if message.command_id == pdu.ENQUIRE_LINK:
            self._send(pdu.header_only(pdu.ENQUIRE_LINK_RESP, message.sequence))
        elif message.command_id == pdu.UNBIND:
            self._send(pdu.header_only(pdu.UNBIND_RESP, message.sequence))
            self._shut("the SMSC unbound")
        elif message.command_id == pdu.DELIVER_SM:
            self._spawn(self._answer_deliver(message))
        elif message.command_id != pdu.ALERT_NOTIFICATION:
            self._send(pdu.header_only(pdu.GENERIC_NACK, message.sequence, pdu.RINVCMDID))

    async def _answer_deliver(self, message: Pdu) -> None:
        status = await self._on_deliver(message)
        # deliver_sm_resp's body is a message_id that SMPP 3.4 says is unused: one NUL.
        self._send(pdu.with_body(pdu.DELIVER_SM_RESP, message.sequence, b"\0", status))

    async def _keep_alive(self) -> None:
        s = self._settings
        while not self.closed.is_set():
            await asyncio.sleep(s.enquire_link_interval)
            try:
                async with asyncio.timeout(s.response_timeout):
                    await self.request(lambda seq: pdu.header_only(pdu.ENQUIRE_LINK, seq),
                                       windowed=False)
            except TimeoutError:
                self._shut(f"no enquire_link_resp within {s.response_timeout:g}s")
            except LinkClosed:
                return
