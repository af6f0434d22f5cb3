"""The ``dns`` check: a resolver answers a query with the expected rcode and records.

    kind: dns
    query-name: example.org
    record-type: MX
    resolver: 1.1.1.1        # host[:port]; default: the system's resolvers
    expect: [mail.example.org]

Expected values must all be in the answer. Names compare without case and trailing dot,
addresses in canonical form; MX and SRV may be given as the whole record ("10 mx.x")
or just their target, CAA as the whole record or its value. TXT compares exactly (case
matters there), as the strings of a record joined together.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.reversename
from dns.rdtypes.ANY.CAA import CAA
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.SRV import SRV
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from dozor.checks._net import (
    CheckFailure,
    Stopwatch,
    ThreadBuiltCache,
    describe_os_error,
    host_port,
    is_ip,
    resolve,
    within,
)
from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.core.types import ErrorCode, Outcome
from dozor.outbound import AddressPolicy

RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "CAA", "SRV", "PTR"]
Nameserver = tuple[str, int]
MARGIN = 0.02  # finish before the runner's own limit on the same timeout
EDNS_PAYLOAD = 1232  # the DNS flag day size: big answers rarely need TCP, never fragment


def _check_name(value: str) -> str:
    try:
        dns.name.from_text(value.strip())
    except (dns.exception.DNSException, UnicodeError) as error:
        raise ValueError(f"not a valid DNS name: {error}") from None
    return value.strip()


def _check_rcode(value: str) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.from_text(value.strip().upper()))
    except dns.rcode.UnknownRcode:
        raise ValueError(f"unknown rcode {value!r} (e.g. NOERROR, NXDOMAIN)") from None


def parse_resolver(text: str) -> Nameserver:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address, port 53 by default.

    >>> parse_resolver("[::1]:5353")
    ('::1', 5353)
    """
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host or host:port, e.g. 192.0.2.53:5353 or [2001:db8::53]")
    return host, int(port)


def _check_resolver(value: str | None) -> str | None:
    if value is not None:
        parse_resolver(value)
    return value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class DnsConfig(CheckConfig):
    """What to ask, whom, and what the answer must hold.

    >>> DnsConfig.model_validate({"query-name": "example.org", "record-type": "aaaa"}).record_type
    'AAAA'
    """

    query_name: Annotated[str, AfterValidator(_check_name)] = Field(min_length=1)
    record_type: Annotated[RecordType, BeforeValidator(lambda v: str(v).upper())] = "A"
    resolver: Annotated[str | None, AfterValidator(_check_resolver)] = None
    protocol: Literal["udp", "tcp"] = "udp"
    expect: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    expect_rcode: Annotated[str, AfterValidator(_check_rcode)] = "NOERROR"

    @model_validator(mode="after")
    def _values_need_noerror(self) -> Self:
        if self.expect and self.expect_rcode != "NOERROR":
            raise ValueError("expect needs expect-rcode NOERROR: other answers have no records")
        return self

    def question(self) -> dns.name.Name:
        if self.record_type == "PTR" and is_ip(self.query_name):
            return dns.reversename.from_address(self.query_name)  # people think in addresses
        return dns.name.from_text(self.query_name)

    def target_host(self) -> str | None:
        return parse_resolver(self.resolver)[0] if self.resolver else None


def system_nameservers() -> list[Nameserver]:
    """The resolvers in /etc/resolv.conf (or the platform's equivalent). Blocking."""
    resolver = dns.resolver.Resolver()
    return [(str(server), resolver.port) for server in resolver.nameservers]


@register
class DnsCheck:
    kind: ClassVar[str] = "dns"
    Config: ClassVar[type[CheckConfig]] = DnsConfig

    def __init__(self, nameservers: Callable[[], list[Nameserver]] = system_nameservers) -> None:
        self._nameservers = nameservers
        self._system = ThreadBuiltCache(ttl=60)  # resolv.conf may change under DHCP

    async def run(self, config: DnsConfig, ctx: CheckContext) -> Outcome:
        watch = Stopwatch()
        deadline = asyncio.get_running_loop().time() + ctx.timeout - MARGIN
        servers: list[Nameserver] = []
        try:
            async with asyncio.timeout(ctx.timeout):  # backstop: _ask stops in time itself
                servers = await self._servers(config, watch, ctx.policy)
                response, server, protocol = await _ask(config, servers, deadline, watch)
        except TimeoutError:
            names = ", ".join(host_port(*server) for server in servers)
            return CheckFailure(ErrorCode.TIMEOUT, f"no answer{' from ' * bool(names)}{names} "
                                f"within {ctx.timeout:g}s").outcome(watch)
        except CheckFailure as failure:
            return failure.outcome(watch)
        return judge(config, response, watch, resolver=server, protocol=protocol)

    async def _servers(self, config: DnsConfig, watch: Stopwatch,
                       policy: AddressPolicy | None) -> list[Nameserver]:
        if config.resolver is not None:  # the system's resolvers are the operator's own
            host, port = parse_resolver(config.resolver)
            addresses = await resolve(host, port, "any", watch, policy)
            return [(address, port) for address in addresses]
        try:
            servers = await self._system.get("system", self._nameservers)
        except (OSError, dns.exception.DNSException) as error:
            raise CheckFailure(ErrorCode.DNS, f"no system resolver configured: {error}") from None
        if not servers:
            raise CheckFailure(ErrorCode.DNS, "no system resolver configured")
        return servers


async def _ask(
    config: DnsConfig, servers: list[Nameserver], deadline: float, watch: Stopwatch
) -> tuple[dns.message.Message, str, str]:
    """Ask each resolver in turn, sharing the time left, until one answers; TimeoutError
    when none did in time."""
    query = dns.message.make_query(config.question(), config.record_type,
                                   use_edns=0, payload=EDNS_PAYLOAD)
    loop = asyncio.get_running_loop()
    failure: CheckFailure | None = None
    with watch.phase("dns"):
        for index, (address, port) in enumerate(servers):
            share = (deadline - loop.time()) / (len(servers) - index)
            where = host_port(address, port)
            try:
                response, protocol = await _exchange(query, address, port, config.protocol, share)
                return response, where, protocol
            except (TimeoutError, dns.exception.Timeout):
                continue  # a slow resolver is not an error worth more than silence
            except (OSError, dns.exception.DNSException) as error:
                failure = CheckFailure(ErrorCode.DNS, f"resolver {where} failed: "
                                       f"{_describe(error)}")
    raise failure or TimeoutError()


async def _exchange(
    query: dns.message.Message, address: str, port: int, protocol: str, seconds: float
) -> tuple[dns.message.Message, str]:
    if seconds <= 0:
        raise TimeoutError
    if protocol == "tcp":
        response = await within(seconds, dns.asyncquery.tcp(query, address, seconds, port))
        return response, "tcp"
    response, used_tcp = await within(
        seconds, dns.asyncquery.udp_with_fallback(query, address, seconds, port)
    )
    return response, "tcp" if used_tcp else "udp"


def _describe(error: Exception) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError):
        return describe_os_error(error)
    return str(error) or type(error).__name__


def answer_forms(rdata: dns.rdata.Rdata) -> set[str]:
    """Every spelling of a record an expected value may match, normalised."""
    forms = {display(rdata)}
    if isinstance(rdata, MX):
        forms.add(rdata.exchange.to_text())
    elif isinstance(rdata, SRV):
        forms.add(rdata.target.to_text())
    elif isinstance(rdata, CAA):
        forms.add(rdata.value.decode(errors="replace"))
    return {normalise(form, rdata.rdtype) for form in forms}


def display(rdata: dns.rdata.Rdata) -> str:
    """A record as people write it: TXT strings joined, CAA values unquoted."""
    if isinstance(rdata, TXT):
        return "".join(part.decode(errors="replace") for part in rdata.strings)
    if isinstance(rdata, CAA):
        return f"{rdata.flags} {rdata.tag.decode()} {rdata.value.decode(errors='replace')}"
    return rdata.to_text()


def normalise(value: str, rdtype: int) -> str:
    """Case, trailing dots and address spelling do not matter; TXT is compared as is.

    >>> normalise("10 MX.Example.ORG.", dns.rdatatype.MX)
    '10 mx.example.org'
    """
    if rdtype == dns.rdatatype.TXT:
        return value
    return " ".join(_normalise_word(word) for word in value.split())


def _normalise_word(word: str) -> str:
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        pass
    if len(word) > 1 and word.endswith("."):
        word = word[:-1]
    return word.casefold()


def judge(config: DnsConfig, response: dns.message.Message, watch: Stopwatch,
          **details: Any) -> Outcome:
    rdtype = dns.rdatatype.from_text(config.record_type)
    records = [rdata for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset]
    rcode = dns.rcode.to_text(response.rcode())
    # Sorted: servers rotate record order, and a stable list is easier to compare.
    details.update(rcode=rcode, answers=sorted(display(rdata) for rdata in records))
    failure = _failure(config, rcode, records, details["resolver"])
    if failure is not None:
        return failure.outcome(watch, **details)
    outcome = Outcome.up(watch.total(), **details)
    outcome.phases = watch.finish()
    return outcome


def _failure(config: DnsConfig, rcode: str, records: list[dns.rdata.Rdata],
             resolver: str) -> CheckFailure | None:
    question = f"{config.query_name} {config.record_type}"
    if rcode != config.expect_rcode:
        # An error where records were wanted is a DNS failure; anything else is a
        # surprise, e.g. a name that should be gone but still resolves.
        error = ErrorCode.DNS if config.expect_rcode == "NOERROR" else ErrorCode.UNEXPECTED_ANSWER
        return CheckFailure(error, f"{resolver} answered {rcode} for {question}, "
                            f"expected {config.expect_rcode}")
    if rcode == "NOERROR" and not records:
        return CheckFailure(ErrorCode.UNEXPECTED_ANSWER, f"{resolver} has no records for "
                            f"{question}")
    found = set().union(*(answer_forms(rdata) for rdata in records)) if records else set()
    rdtype = dns.rdatatype.from_text(config.record_type)
    missing = [value for value in config.expect if normalise(value, rdtype) not in found]
    if missing:
        shown = ", ".join(sorted(display(rdata) for rdata in records))
        return CheckFailure(ErrorCode.UNEXPECTED_ANSWER, f"the answer for {question} lacks "
                            f"{', '.join(missing)} (it has {shown})")
    return None
