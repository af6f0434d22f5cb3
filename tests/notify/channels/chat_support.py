"""What the chat and webhook channel tests share: a context on a fresh Outbound, a sample
message, a port nobody listens on, the expected outcome of a send, and an endpoint that
plays Dozor's side of a callback URL."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from dozor.notify.channels.base import (
    CallbackReply,
    CallbackRequest,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
)
from dozor.outbound import Outbound
from tests.servers.chat_webhooks import Received, RecordingServer

SHORT_TIMEOUT = 0.3  # for the server that never answers


@asynccontextmanager
async def channel_context(send_timeout: float = 5.0,
                          callback_url: str | None = None) -> AsyncIterator[ChannelContext]:
    outbound = Outbound(user_agent="dozor-test")
    try:
        yield ChannelContext(outbound=outbound, timeout=send_timeout, callback_url=callback_url)
    finally:
        await outbound.close()


def make_message(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "id": 7, "idempotency_key": "msg-7-3f2a9c", "event": "down",
        "subject": "api.example.com is down",
        "text": "HTTP 503 from https://api.example.com/health (2 of 3 locations)",
        "link": "https://status.example.com/monitors/7",
    }
    return Message(**(values | fields))


def point(kind: str, address: str, secret: str | None = None) -> ContactPoint:
    return ContactPoint(id=3, kind=kind, address=address, secret=secret)


def refused_url(path: str = "/") -> str:
    """A loopback URL whose port was free a moment ago: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class Sends(Protocol):
    async def send(self, message: Message, point: ContactPoint) -> Receipt: ...


async def attempt(channel: Sends, message: Message, to: ContactPoint) -> Receipt | DeliveryError:
    try:
        return await channel.send(message, to)
    except DeliveryError as error:
        return error


@dataclass(frozen=True)
class Fails:
    """The DeliveryError a send should raise; ``reason`` is a part of its text."""

    permanent: bool
    provider_code: str | None = None
    retry_after: float | None = None
    channel_fault: bool = False
    reason: str = ""


def check(outcome: Receipt | DeliveryError, expected: Receipt | Fails) -> None:
    if isinstance(expected, Receipt):
        assert outcome == expected, getattr(outcome, "reason", outcome)
        return
    assert isinstance(outcome, DeliveryError), f"accepted: {outcome}"
    got = Fails(outcome.permanent, outcome.provider_code, outcome.retry_after,
                outcome.channel_fault, expected.reason)
    assert got == expected, outcome.reason
    assert expected.reason in outcome.reason


def callback_request(body: bytes, headers: dict[str, str] | None = None,
                     method: str = "POST") -> CallbackRequest:
    return CallbackRequest(method=method, url="https://dozor.example.com/callbacks/9",
                           query={}, form={}, body=body,
                           headers={k.lower(): v for k, v in (headers or {}).items()})


class CallbackEndpoint(RecordingServer):
    """Dozor's side of a callback URL: each request becomes a CallbackRequest for
    ``handler``, whose CallbackReply is answered and kept in ``replies``."""

    def __init__(self, handler: Callable[[CallbackRequest], Awaitable[CallbackReply]]) -> None:
        super().__init__()
        self.handler = handler
        self.replies: list[CallbackReply] = []

    async def answer(self, request: web.Request, received: Received) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        reply = await self.handler(CallbackRequest(
            method=request.method, url=str(request.url), query=dict(request.query),
            form=form, body=received.body,
            headers={name.lower(): value for name, value in request.headers.items()}))
        self.replies.append(reply)
        return web.Response(status=reply.status, text=reply.body,
                            content_type=reply.content_type)
