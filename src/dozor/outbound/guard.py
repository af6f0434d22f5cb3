"""Which addresses outbound connections may reach: the guard against server-side request
forgery (SSRF).

Where strangers can sign up, a monitor's target or a webhook URL is someone else's
instruction to connect somewhere from inside our network. There, private, loopback,
link-local (cloud metadata lives at 169.254.169.254), multicast and every other
non-global address is refused. A self-hosted server watches its own network, so there
they are allowed (``DOZOR_PRIVATE_TARGETS``).

The address judged is the one about to be connected to, after DNS, on every redirect
hop: a name that resolves to a public address when it is saved and to a private one
later (DNS rebinding) is still refused.

>>> AddressPolicy(allow_private=False).refusal("169.254.169.254")
'169.254.169.254 is a link-local address'
>>> AddressPolicy(allow_private=False).refusal("93.184.215.14") is None
True
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from dozor.core.types import ErrorCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses reached through a NAT64


class BlockedAddress(OSError):
    """A connection refused by the policy (an OSError, so connect paths treat it as a
    failed connect; its ``code`` tells it apart)."""

    code = ErrorCode.BLOCKED

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.strerror = reason


class AddressPolicy:
    """Allows every address, or only global ones (``allow_private=False``)."""

    __slots__ = ("allow_private",)

    def __init__(self, allow_private: bool = True) -> None:
        self.allow_private = allow_private

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (an IP address) may not be reached; None if it may."""
        if self.allow_private:
            return None
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return f"{address} is not an IP address"
        for candidate in _meanings(ip):
            if not candidate.is_global or candidate.is_multicast:
                return f"{address} is a {_kind(candidate)} address"
        return None

    def socket_factory(self, addr_info: Any) -> socket.socket:
        """For aiohttp's ``TCPConnector(socket_factory=...)``: refuse before connecting."""
        family, kind, proto, _, sockaddr = addr_info
        reason = self.refusal(str(sockaddr[0]))
        if reason is not None:
            raise BlockedAddress(f"refused to connect: {reason}")
        return socket.socket(family=family, type=kind, proto=proto)


class GuardedResolver(AbstractResolver):
    """For aiohttp sessions: leaves out the addresses the policy refuses, and refuses
    the name when nothing is left. (IP addresses in URLs skip resolvers; the policy's
    socket factory catches those.)"""

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        allowed = [entry for entry in found if self.policy.refusal(entry["host"]) is None]
        if found and not allowed:
            reason = self.policy.refusal(found[0]["host"])
            raise BlockedAddress(f"refused to connect to {host}: {reason}")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def _meanings(ip: IPAddress) -> list[IPAddress]:
    """The address, and the IPv4 address it stands for if it embeds one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return [ip.ipv4_mapped]
        if ip in _NAT64:
            return [ip, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
        if ip.sixtofour is not None:
            return [ip, ip.sixtofour]
    return [ip]


def _kind(ip: IPAddress) -> str:
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"
