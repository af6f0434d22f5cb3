"""Reading one HTTP/1.1 response off a fresh connection, for a measured exchange.

The parsing is llhttp's (through ``httptools``, the parser uvicorn uses); this module
decides when a response is complete enough for a check: at the headers, unless the body
is wanted, and then at most ``cap`` bytes of it (decompressed). It settles a future once:
with the response, or with an :class:`ExchangeError` saying what went wrong.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable

import httptools

from dozor.core.types import ErrorCode
from dozor.outbound.errors import ExchangeError

# Statuses whose response never has a body (llhttp knows it too, but a HEAD answer looks
# like any other to the parser).
_BODYLESS = frozenset({204, 304})


class Head:
    """The status line and headers of the final (non-interim) response."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class Received:
    """What was read: the head, and the body when it was wanted."""

    __slots__ = ("body", "head", "truncated")

    def __init__(self, head: Head, body: bytes | None, truncated: bool) -> None:
        self.head = head
        self.body = body
        self.truncated = truncated


class ResponseReader(asyncio.Protocol):
    """An asyncio protocol for one request's connection. ``done`` settles with a
    :class:`Received` or an :class:`ExchangeError`; bytes after that are ignored.

    ``on_headers(now)`` is called the moment the final response's headers are in.
    """

    __slots__ = ("_body", "_cap", "_decoder", "_got_bytes", "_head", "_headers",
                 "_interim", "_on_headers", "_parser", "_wants_body", "done")

    def __init__(self, done: asyncio.Future[Received], *, wants_body: bool, cap: int,
                 on_headers: Callable[[float], None]) -> None:
        self.done = done
        self._wants_body = wants_body
        self._cap = cap
        self._on_headers = on_headers
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[str, str]] = []
        self._head: Head | None = None
        self._interim = False
        self._body = bytearray()
        self._decoder: _Decoder | None = None
        self._got_bytes = False

    # asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._fail(cause if isinstance(cause, ExchangeError) else _invalid(str(error)))
        except httptools.HttpParserError as error:
            self._fail(_invalid(_parser_reason(error)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self._head is not None and self._close_delimited():
            self._finish()  # the body ran until the server closed: that is its end
        elif self._head is not None:
            self._fail(ExchangeError(ErrorCode.PROTOCOL,
                                     "the response body was cut off or malformed"))
        elif self._got_bytes:
            self._fail(_invalid("the connection closed in the middle of the headers"))
        else:
            self._fail(ExchangeError(ErrorCode.CONNECTION,
                                     "the server closed the connection without answering"))

    # httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 100 Continue, 103 Early Hints...
            self._interim, self._headers = True, []
            return
        self._head = Head(status, self._headers)
        self._on_headers(time.perf_counter())
        if not self._wants_body or status in _BODYLESS or status == 101:
            self._finish()
            return
        encoding = self._head.header("content-encoding")
        if encoding and encoding.strip().lower() != "identity":
            self._decoder = _Decoder(encoding.strip().lower())

    def on_body(self, chunk: bytes) -> None:
        if self.done.done():
            return
        room = self._cap + 1 - len(self._body)  # one byte more tells "there was more"
        self._body += self._decoder.decode(chunk, room) if self._decoder else chunk[:room]
        if len(self._body) > self._cap:
            self._finish()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._decoder is not None and not self.done.done():
            self._body += self._decoder.flush(self._cap + 1 - len(self._body))
        self._finish()

    # ---------------------------------------------------------------------------------

    def _close_delimited(self) -> bool:
        head = self._head
        assert head is not None
        chunked = "chunked" in (head.header("transfer-encoding") or "").lower()
        return head.header("content-length") is None and not chunked

    def _finish(self) -> None:
        if self.done.done() or self._head is None:
            return
        if not self._wants_body:
            self.done.set_result(Received(self._head, None, False))
            return
        truncated = len(self._body) > self._cap
        self.done.set_result(Received(self._head, bytes(self._body[:self._cap]), truncated))

    def _fail(self, error: ExchangeError) -> None:
        if not self.done.done():
            self.done.set_exception(error)


class _Decoder:
    """Inflates a gzip or deflate body, never past the room it is given (a small
    compressed body can inflate to gigabytes)."""

    __slots__ = ("_inflate", "_raw_fallback")

    def __init__(self, encoding: str) -> None:
        if encoding in ("gzip", "x-gzip"):
            self._inflate, self._raw_fallback = zlib.decompressobj(16 + zlib.MAX_WBITS), False
        elif encoding == "deflate":  # zlib-wrapped, as the RFC says; raw if that fails
            self._inflate, self._raw_fallback = zlib.decompressobj(), True
        else:
            raise ExchangeError(ErrorCode.PROTOCOL,
                                f"the body is encoded as {encoding!r}, which Dozor cannot read")

    def decode(self, chunk: bytes, room: int) -> bytes:
        if room <= 0:
            return b""
        try:
            return self._inflate.decompress(chunk, room)
        except zlib.error:
            if self._raw_fallback:
                self._inflate, self._raw_fallback = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.decode(chunk, room)
            raise ExchangeError(ErrorCode.PROTOCOL,
                                "the response body was cut off or malformed") from None

    def flush(self, room: int) -> bytes:
        if room <= 0:
            return b""
        try:
            return self._inflate.flush()[:room]
        except zlib.error:
            raise ExchangeError(ErrorCode.PROTOCOL,
                                "the response body was cut off or malformed") from None


def _invalid(reason: str) -> ExchangeError:
    return ExchangeError(ErrorCode.PROTOCOL, f"invalid HTTP response: {reason}")


def _parser_reason(error: Exception) -> str:
    text = str(error).strip()
    return text or "the parser refused it"
