"""The measured exchange against real local servers: what it sends, how it reads every
shape of response (interim, chunked, close-delimited, compressed, bodiless), how it
follows redirects, and how it records phases and peers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from dozor.core.types import ErrorCode
from dozor.outbound import ExchangeError, ExchangeRecord, HttpRequest, HttpResponse, Outbound
from tests.servers.http import LocalHttpServer, RawServer


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


async def fetch(outbound: Outbound, url: str, **fields: Any) -> HttpResponse:
    request = HttpRequest(fields.pop("method", "GET"), URL(url), **fields)
    async with asyncio.timeout(5):
        return await outbound.exchange(request, ExchangeRecord())


async def raw(outbound: Outbound, reply: bytes, **fields: Any) -> tuple[HttpResponse, bytes]:
    """Fetch from a server that answers ``reply``; also what the request looked like."""
    async with RawServer(reply) as server:
        response = await fetch(outbound, server.url("/path?q=1"), **fields)
    return response, server.received[-1]


# --- reading responses --------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "body"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
     b"hello"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello", b"hello"),  # until close
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
    (b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", b""),
    (b"HTTP/1.0 200 OK\r\n\r\nold", b"old"),
])
async def test_every_shape_of_response_body_is_read(outbound: Outbound, reply: bytes,
                                                    body: bytes) -> None:
    response, _ = await raw(outbound, reply, read_body=True)
    assert response.body == body and not response.truncated


async def test_an_interim_response_leaves_only_the_final_headers(outbound: Outbound) -> None:
    response, _ = await raw(outbound, b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert response.status == 404 and "Link" not in response.headers


async def test_a_head_request_does_not_wait_for_the_body_its_length_announces(
        outbound: Outbound) -> None:
    response, sent = await raw(outbound, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
                               method="HEAD", read_body=True)
    assert response.status == 200 and response.body is None and response.content_length == 99
    assert sent.startswith(b"HEAD /path?q=1 HTTP/1.1\r\n")


# Named ids, and no time in the gzip header: each xdist worker collects the tests on its
# own, and ids made of the bytes differed when the workers' clocks crossed a second.
@pytest.mark.parametrize(("encoding", "packed"), [
    ("gzip", gzip.compress(b"hello " * 100, mtime=0)),
    ("deflate", zlib.compress(b"hello " * 100)),
    ("deflate", zlib.compress(b"hello " * 100)[2:-4]),  # raw deflate, as some servers send
], ids=["gzip", "zlib-deflate", "raw-deflate"])
async def test_compressed_bodies_are_inflated(outbound: Outbound, encoding: str,
                                              packed: bytes) -> None:
    reply = (f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
             f"Content-Length: {len(packed)}\r\n\r\n").encode() + packed
    response, _ = await raw(outbound, reply, read_body=True)
    assert response.body == b"hello " * 100


async def test_a_body_in_an_encoding_nobody_reads_is_a_protocol_error(
        outbound: Outbound) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: zz\r\nContent-Length: 3\r\n\r\nabc"
    with pytest.raises(ExchangeError) as caught:
        await raw(outbound, reply, read_body=True)
    assert caught.value.code == ErrorCode.PROTOCOL and "'zz'" in caught.value.message


async def test_the_body_is_capped_and_the_cut_is_told(outbound: Outbound) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
    response, _ = await raw(outbound, reply, read_body=True, max_body_bytes=4)
    assert (response.body, response.truncated) == (b"0123", True)
    exact, _ = await raw(outbound, reply, read_body=True, max_body_bytes=10)
    assert (exact.body, exact.truncated) == (b"0123456789", False)


@pytest.mark.parametrize(("reply", "code", "message"), [
    (b"", ErrorCode.CONNECTION, "closed the connection without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", ErrorCode.PROTOCOL, "in the middle of the headers"),
    (b"SMTP ready\r\n\r\n", ErrorCode.PROTOCOL, "invalid HTTP response"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", ErrorCode.PROTOCOL,
     "cut off"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
     ErrorCode.PROTOCOL, "cut off or malformed"),
])
async def test_broken_responses_are_named(outbound: Outbound, reply: bytes, code: ErrorCode,
                                          message: str) -> None:
    with pytest.raises(ExchangeError) as caught:
        await raw(outbound, reply, read_body=True)
    assert caught.value.code == code and message in caught.value.message


# --- what is sent -------------------------------------------------------------------------

async def test_the_request_head_is_complete_and_its_framing_is_ours(outbound: Outbound) -> None:
    _, sent = await raw(outbound, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                        method="POST", headers=(("Connection", "keep-alive"),
                                                ("Content-Length", "999"), ("X-A", "b")))
    lines = sent.decode().split("\r\n")
    assert lines[0] == "POST /path?q=1 HTTP/1.1"
    assert lines[1].startswith("Host: 127.0.0.1:")
    assert {"User-Agent: dozor-test", "Accept: */*", "X-A: b", "Content-Length: 0",
            "Connection: close"} <= set(lines)
    assert "Connection: keep-alive" not in lines and "Content-Length: 999" not in lines


async def test_a_host_header_names_the_virtual_host(outbound: Outbound) -> None:
    _, sent = await raw(outbound, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                        headers=(("host", "shop.example"), ("user-agent", "mine")))
    lines = sent.decode().split("\r\n")
    assert lines[1] == "Host: shop.example" and "user-agent: mine" in lines
    assert not any(line.startswith("User-Agent:") for line in lines)


# --- redirects ----------------------------------------------------------------------------

async def test_a_see_other_redirect_turns_a_post_into_a_get_without_body(
        outbound: Outbound) -> None:
    async with LocalHttpServer() as server:
        url = server.serve("/form", status=303, headers={"Location": "/echo"})
        response = await fetch(outbound, url, method="POST", body=b"x=1",
                               headers=(("Content-Type", "application/x-www-form-urlencoded"),),
                               read_body=True)
    assert response.status == 200 and response.redirects == 1
    assert [r.method for r in server.requests] == ["POST", "GET"]
    assert server.requests[-1].body == b"" and "Content-Type" not in server.requests[-1].headers


@pytest.mark.parametrize("location", ["ftp://example.test/", "http://", "http://[::1"])
async def test_a_redirect_to_nowhere_http_can_go_is_a_protocol_error(
        outbound: Outbound, location: str) -> None:
    reply = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ExchangeError) as caught:
        await raw(outbound, reply.encode())
    assert caught.value.message == "redirected to an invalid or non-HTTP URL"


# --- connections, phases and peers --------------------------------------------------------

class Loopbacks(AbstractResolver):
    """``dual.test`` has an IPv6 address nobody listens on, then the IPv4 one that works."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        await asyncio.sleep(0.01)
        dead = ResolveResult(hostname=host, host="::1", port=_unused_port(), family=socket.AF_INET6,
                             proto=6, flags=0)
        live = ResolveResult(hostname=host, host="127.0.0.1", port=port,
                             family=socket.AF_INET, proto=6, flags=0)
        return [dead, live]

    async def close(self) -> None:
        pass


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_host_with_several_addresses_gets_the_one_that_answers() -> None:
    async with LocalHttpServer() as server:
        client = Outbound("dozor-test", resolver=Loopbacks(server.port))
        record = ExchangeRecord()
        try:
            response = await client.exchange(
                HttpRequest("GET", URL(f"http://dual.test:{server.port}/status/200")), record)
        finally:
            await client.close()
    assert response.status == 200 and record.peer_ip == "127.0.0.1"
    assert record.dns >= 0.01 and server.requests[-1].headers["Host"].startswith("dual.test:")


async def test_concurrent_exchanges_keep_their_own_records(outbound: Outbound) -> None:
    async with LocalHttpServer() as server:
        async def timed(path: str) -> ExchangeRecord:
            record = ExchangeRecord()
            await outbound.exchange(HttpRequest("GET", URL(server.url(path))), record)
            return record

        slow, fast = await asyncio.gather(timed("/delay/0.3"), timed("/status/200"))
    assert slow.first_byte >= 0.3 > fast.first_byte
    assert slow.connections == fast.connections == 1
    assert slow.phases_ms().keys() == {"dns", "connect", "first_byte"}


def test_a_record_leaves_out_first_byte_until_the_headers_arrive() -> None:
    record = ExchangeRecord()
    assert record.phases_ms() == {}
    record.connection_ready(1.0)
    assert "first_byte" not in record.phases_ms()
    record.headers_received(1.25)
    assert record.phases_ms() == pytest.approx({"dns": 0, "connect": 0, "first_byte": 250})
