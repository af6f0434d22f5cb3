"""An SMSC for SMPP tests: the ``smpp34`` library's SMPP server, behind a scriptable front.

The SMSC itself (sessions, submit_sm answers, enquire_link, deliver_sm and its response
timer) is smpp34's server, running in this process. Its Python API accepts every bind and
cannot drop a link, so clients reach it through a front on an ephemeral loopback port that
forwards PDUs both ways and can also: refuse binds (checking ``users``, or always with
``bind_status``), drop every link at once, freeze (forward nothing, like a dead network),
speak TLS (like the stunnel an SMSC often sits behind), send its own enquire_link, and
record every PDU a client sent::

    async with SmscSimulator() as smsc:         # users: {"dozor": "secret"}
        smsc.submit_statuses.append(ESME_RTHROTTLED)   # the next submit_sm is refused
        ...                                      # a client binds to 127.0.0.1:smsc.port
        await smsc.wait_bound()
        await smsc.receipt(smsc.received[0].message_id, "DELIVRD")
        await smsc.mobile_originated("48600100200", "STOP")
        await smsc.drop()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
import struct
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

import smpp34

ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58

BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
SUBMIT_SM = 0x00000004
UNBIND = 0x00000006
RESPONSE = 0x80000000
HEADER = struct.Struct(">IIII")
INJECTED = 0x7FFF0000  # sequence numbers of the front's own requests, never smpp34's
COMMAND_NAMES = {0x04: "submit_sm", 0x06: "unbind", 0x09: "bind_transceiver",
                 0x15: "enquire_link", 0x80000005: "deliver_sm_resp",
                 0x80000006: "unbind_resp", 0x80000015: "enquire_link_resp",
                 0x80000000: "generic_nack"}


@dataclass(frozen=True, slots=True)
class Bind:
    system_id: str
    password: str
    system_type: str
    status: int  # what the SMSC answered


@dataclass(frozen=True, slots=True)
class ReceivedSubmit:
    """A submit_sm the SMSC got, and what it answered."""

    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    service_type: str
    short_message: bytes
    status: int | None  # None: held, never answered
    message_id: str | None


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    backend: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    head = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = HEADER.unpack(head)
    if length < HEADER.size or length > 70_000:
        raise ValueError(f"a PDU of {length} bytes")
    return command_id, status, sequence, head + await reader.readexactly(length - HEADER.size)


class SmscSimulator:
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.users = {"dozor": "secret"} if users is None else users
        self.bind_status: int | None = None  # refuse every bind with this status
        self.submit_statuses: deque[int] = deque()  # answers to the next submit_sm, in order
        self.hold_submits = False  # leave submit_sm unanswered (an SMSC that hangs)
        self.frozen = False  # forward nothing either way, answer no bind (a dead network)
        self.binds: list[Bind] = []
        self.received: list[ReceivedSubmit] = []
        self.commands: list[str] = []  # every PDU a client sent, by name
        self._ssl_context = ssl_context
        self._smsc: smpp34.Server | None = None
        self._backend_port = 0
        self._front: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._sessions: dict[str, smpp34.Esme] = {}
        self._session_change = asyncio.Event()
        self._held: list[smpp34.SubmitSmEvent] = []
        self._ids = itertools.count(1)
        self._injected: dict[int, asyncio.Future[int]] = {}
        self._injected_sequences = itertools.count(INJECTED)

    async def start(self) -> None:
        self._backend_port = _free_port()
        self._smsc = smpp34.Server(self.host, self._backend_port, system_id="SIMSMSC")
        await self._smsc.start()
        self._pump = asyncio.create_task(self._serve_events(self._smsc))
        self._front = await asyncio.start_server(self._accept, self.host, 0,
                                                 ssl=self._ssl_context)
        self.port = self._front.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._front is not None:
            self._front.close()
            await self._front.wait_closed()
        await self.drop()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        self._held.clear()  # smpp34 answers dropped submits with ESME_RSYSERR
        if self._smsc is not None:
            await self._smsc.stop()

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    # -- what a test does -------------------------------------------------------------

    async def wait_bound(self, sessions: int = 1) -> None:
        """Until at least ``sessions`` clients are bound (five seconds at most)."""
        async with asyncio.timeout(5):
            while len(self._sessions) < sessions:
                await self._session_change.wait()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    async def receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000", *,
                      destination: str = "48600100200", tlvs: bool = False) -> int:
        """Send a delivery receipt to the newest session; the status the client answered.
        With ``tlvs`` the receipt also carries receipted_message_id and message_state."""
        states = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5,
                  "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}
        body = (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:2501011200 done date:2501011201 stat:{stat} err:{err} text:")
        extra = [smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
                 smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes((states[stat],)))] if tlvs else []
        return await self._deliver("Dozor", body.encode(), source=destination, esm_class=0x04,
                                   tlvs=extra)

    async def mobile_originated(self, sender: str, text: str, *, ton: int = 1,
                                data_coding: int = 0) -> int:
        """A text from a phone to the newest session; the status the client answered."""
        encoded = text.encode("utf-16-be") if data_coding == 8 else text.encode("ascii")
        return await self._deliver("Dozor", encoded, source=sender, source_ton=ton,
                                   data_coding=data_coding)

    async def drop(self) -> None:
        """Cut every link at once, no unbind (the network or the SMSC died)."""
        for link in list(self._links):
            await self._cut(link)

    async def unbind_all(self) -> None:
        """The SMSC unbinds every session (maintenance)."""
        for esme in list(self._sessions.values()):
            await esme.unbind()

    async def enquire_client(self) -> int:
        """Send enquire_link to the newest client; the status of its enquire_link_resp."""
        link = next(reversed(list(self._links)))
        sequence = next(self._injected_sequences)
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._injected[sequence] = answer
        link.client.write(HEADER.pack(HEADER.size, ENQUIRE_LINK, 0, sequence))
        async with asyncio.timeout(5):
            return await answer

    def answer_held(self) -> None:
        """Accept every submit_sm held so far."""
        for event in self._held:
            event.accept(f"held-{next(self._ids)}")
        self._held.clear()

    # -- the SMSC's side --------------------------------------------------------------

    async def _deliver(self, destination: str, message: bytes, *, source: str,
                       source_ton: int = 1, esm_class: int = 0, data_coding: int = 0,
                       tlvs: list[smpp34.Tlv] | None = None) -> int:
        esme = list(self._sessions.values())[-1]
        answer = await esme.deliver_sm(
            destination, message, source_addr=source, source_addr_ton=source_ton,
            source_addr_npi=1, dest_addr_ton=5, dest_addr_npi=0, esm_class=esm_class,
            data_coding=data_coding, tlvs=tlvs or [])
        return answer.command_status

    async def _serve_events(self, smsc: smpp34.Server) -> None:
        while True:
            event = await smsc.next()
            if isinstance(event, smpp34.Esme):
                self._sessions[event.session_id] = event
            elif isinstance(event, smpp34.Unbound):
                self._sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._answer(event)
            self._session_change.set()
            self._session_change = asyncio.Event()

    def _answer(self, event: smpp34.SubmitSmEvent) -> None:
        status: int | None = None
        message_id = None
        if self.hold_submits:
            self._held.append(event)
        else:
            status = self.submit_statuses.popleft() if self.submit_statuses else ESME_ROK
            if status == ESME_ROK:
                message_id = f"{next(self._ids):08x}"
                event.accept(message_id)
            else:
                event.reject(status)
        self.received.append(ReceivedSubmit(
            event.source_addr, event.source_addr_ton, event.source_addr_npi,
            event.destination_addr, event.dest_addr_ton, event.dest_addr_npi,
            event.esm_class, event.data_coding, event.registered_delivery,
            event.service_type, event.short_message, status, message_id))

    # -- the front ------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        try:
            command_id, _, sequence, frame = await _read_frame(reader)
            if self.frozen or command_id != BIND_TRANSCEIVER:
                await reader.read()  # a dead network answers nothing, ever
                return
            status = self._check_bind(frame)
            if status != ESME_ROK:
                writer.write(HEADER.pack(HEADER.size + 8, BIND_TRANSCEIVER_RESP, status,
                                         sequence) + b"SIMSMSC\0")
                await writer.drain()
                return
            backend_reader, link.backend = await asyncio.open_connection(
                self.host, self._backend_port)
            link.backend.write(frame)
            self.commands.append("bind_transceiver")
            link.tasks = [asyncio.create_task(self._from_client(reader, link)),
                          asyncio.create_task(self._to_client(backend_reader, link))]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that went away or spoke garbage: the link ends here
        finally:
            await self._cut(link)

    def _check_bind(self, frame: bytes) -> int:
        system_id, password, system_type = frame[HEADER.size:].split(b"\0")[:3]
        if self.bind_status is not None:
            status = self.bind_status
        elif system_id.decode() not in self.users:
            status = ESME_RINVSYSID
        elif self.users[system_id.decode()] != password.decode():
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        self.binds.append(Bind(system_id.decode(), password.decode(), system_type.decode(),
                               status))
        return status

    async def _from_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            while True:
                command_id, status, sequence, frame = await _read_frame(reader)
                self.commands.append(COMMAND_NAMES.get(command_id, hex(command_id)))
                answer = self._injected.pop(sequence, None)
                if command_id & RESPONSE and answer is not None:
                    answer.set_result(status)
                elif not self.frozen and link.backend is not None:
                    link.backend.write(frame)

    async def _to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            while True:
                *_, frame = await _read_frame(reader)
                if not self.frozen:
                    link.client.write(frame)

    async def _cut(self, link: _Link) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in (link.client, link.backend):
            if writer is not None:
                writer.transport.abort()
