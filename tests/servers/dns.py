"""A small authoritative DNS server on 127.0.0.1 for the dns check's tests.

It answers UDP and TCP on the same ephemeral port from a dict each test configures,
says NXDOMAIN for names it does not know, follows CNAMEs within its records, and can be
told to stay silent (timeouts), to truncate UDP answers (TCP fallback) or to answer with
a fixed rcode.

>>> async def example() -> None:
...     async with DnsServer({"www.dozor.test": {"A": ["127.0.0.1"]}}) as server:
...         print(server.address)  # 127.0.0.1:<port>
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = dict[str, dict[str, list[str]]]  # name -> record type -> values (zone-file text)
CNAME_HOPS = 8


class DnsServer:
    def __init__(self, records: Records | None = None, ttl: int = 60) -> None:
        self.records: Records = records or {}
        self.ttl = ttl
        self.mute = False  # drop every query
        self.truncate_udp = False  # answer UDP with TC and no records
        self.rcode: dns.rcode.Rcode | None = None  # answer every query with this rcode
        self.queries: list[tuple[str, str, str]] = []  # (protocol, name, type)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # the UDP port may be taken for TCP: pick another
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=("127.0.0.1", 0), family=socket.AF_INET
            )
            self._udp = transport
            self.port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", self.port)
                return self
            except OSError:
                transport.close()
        raise RuntimeError("no port free for both UDP and TCP")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._tcp.wait_closed()

    def answer(self, wire: bytes, protocol: str) -> bytes | None:
        """The wire-format reply to one query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        self.queries.append((protocol, question.name.to_text(),
                             dns.rdatatype.to_text(question.rdtype)))
        if self.mute:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if protocol == "udp" and self.truncate_udp:
            response.flags |= dns.flags.TC
        elif self.rcode is not None:
            response.set_rcode(self.rcode)
        else:
            self._fill(response, question.name, question.rdtype)
        return response.to_wire()

    def _fill(self, response: dns.message.Message, name: dns.name.Name,
              rdtype: dns.rdatatype.RdataType) -> None:
        for _ in range(CNAME_HOPS):
            types = self._lookup(name)
            if types is None:
                if not response.answer:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            found = types.get(rdtype) or types.get(dns.rdatatype.CNAME)
            if found is None:
                return  # the name exists without this type: NOERROR, no data
            response.answer.append(found)
            if found.rdtype == rdtype:
                return
            name = found[0].target  # a CNAME: follow it within our records

    def _lookup(self, name: dns.name.Name) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset] | None:
        for owner, types in self.records.items():
            owner_name = dns.name.from_text(owner)
            if owner_name == name:
                return {
                    dns.rdatatype.from_text(rdtype): dns.rrset.from_text_list(
                        owner_name, self.ttl, dns.rdataclass.IN, rdtype, values)
                    for rdtype, values in types.items()
                }
        return None

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length), "tcp")
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, OSError):
            pass  # the client is done
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an asyncio.DatagramTransport subclass on 3.11's selector loop, though it is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self.server.answer(data, "udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
