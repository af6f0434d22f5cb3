"""What the Viber, Messenger, WhatsApp and Apprise channel tests share: a message, the
expected shape of a DeliveryError, and a port nothing listens on."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from dozor.notify.channels.base import DeliveryError, Message

MESSAGE = Message(id=7, idempotency_key="msg-7-try", event="down", subject="Down: shop",
                  text="https://shop.example answered HTTP 503", language="en",
                  link="https://dozor.example/monitors/3")


@dataclass(frozen=True)
class Fails:
    """How a send should fail: the DeliveryError's fields (``reason`` is a substring)."""

    permanent: bool
    channel_fault: bool = False
    retry_after: float | None = None
    code: str | None = None
    reason: str = ""

    def check(self, error: DeliveryError) -> None:
        assert (error.permanent, error.channel_fault) == (self.permanent, self.channel_fault), \
            error.reason
        assert error.retry_after == self.retry_after, error.reason
        assert error.provider_code == self.code, error.reason
        assert self.reason in error.reason


def closed_port() -> int:
    """A loopback port that refuses connections (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
