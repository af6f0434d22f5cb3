"""The dns check against the loopback DNS server in tests/servers/dns.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import dns.rcode
import pydantic
import pytest

from dozor.checks.base import CheckContext
from dozor.checks.dns import DnsCheck, DnsConfig, Nameserver
from dozor.core.types import ErrorCode, Outcome
from tests.servers.dns import DnsServer
from tests.servers.net_fixtures import *  # noqa: F403  (the fixtures)

RECORDS = {
    "www.dozor.test": {"A": ["127.0.0.1", "127.0.0.2"], "AAAA": ["::1"]},
    "alias.dozor.test": {"CNAME": ["www.dozor.test."]},
    "dozor.test": {
        "MX": ["10 mail.dozor.test.", "20 backup.dozor.test."],
        "NS": ["ns1.dozor.test."],
        "TXT": ['"v=spf1 -all"', '"part one" " part two"'],
        "SOA": ["ns1.dozor.test. admin.dozor.test. 7 3600 600 86400 60"],
        "CAA": ['0 issue "letsencrypt.org"'],
    },
    "_sip._tcp.dozor.test": {"SRV": ["0 5 5060 sip.dozor.test."]},
    "1.0.0.127.in-addr.arpa": {"PTR": ["localhost."]},
    "text-only.dozor.test": {"TXT": ['"hello"']},
}


@pytest.fixture
async def server(dns_server: DnsServer) -> AsyncIterator[DnsServer]:
    dns_server.records = RECORDS
    yield dns_server


async def run(config: dict[str, Any], limit: float = 2.0, check: DnsCheck | None = None
              ) -> Outcome:
    check = check or DnsCheck()
    return await check.run(DnsConfig.model_validate(config), CheckContext(timeout=limit))


ANSWERED = [
    pytest.param("www.dozor.test", "A", ["127.0.0.1"], ["127.0.0.1", "127.0.0.2"],
                 id="one of several addresses"),
    pytest.param("WWW.Dozor.Test.", "a", ["127.0.0.2", "127.0.0.1"], None,
                 id="names and types in any case"),
    pytest.param("www.dozor.test", "AAAA", ["0:0::1"], ["::1"], id="an IPv6 address in "
                 "any spelling"),
    pytest.param("alias.dozor.test", "CNAME", "WWW.dozor.test", ["www.dozor.test."],
                 id="a CNAME without its trailing dot"),
    pytest.param("alias.dozor.test", "A", ["127.0.0.1"], None, id="an A record behind a CNAME"),
    pytest.param("dozor.test", "MX", ["mail.dozor.test", "20 backup.dozor.test."], None,
                 id="MX by target or whole record"),
    pytest.param("dozor.test", "NS", ["ns1.dozor.test"], None, id="a name server"),
    pytest.param("dozor.test", "TXT", ["v=spf1 -all", "part one part two"],
                 ["v=spf1 -all", "part one part two"], id="TXT strings joined"),
    pytest.param("dozor.test", "SOA", ["ns1.dozor.test ADMIN.dozor.test. 7 3600 600 86400 60"],
                 None, id="a whole SOA record"),
    pytest.param("dozor.test", "CAA", ["letsencrypt.org", "0 issue letsencrypt.org"],
                 ["0 issue letsencrypt.org"], id="CAA by value or whole record"),
    pytest.param("_sip._tcp.dozor.test", "SRV", ["sip.dozor.test"], None, id="SRV by target"),
    pytest.param("127.0.0.1", "PTR", ["localhost"], ["localhost."],
                 id="PTR from an address"),
    pytest.param("dozor.test", "MX", [], None, id="any records when none are expected"),
]


@pytest.mark.parametrize(("name", "record_type", "expect", "answers"), ANSWERED)
async def test_expected_records_are_up(
    server: DnsServer, name: str, record_type: str, expect: Any, answers: list[str] | None
) -> None:
    outcome = await run({"query-name": name, "record-type": record_type, "expect": expect,
                         "resolver": server.address})
    assert outcome.ok, outcome.message
    assert outcome.details["rcode"] == "NOERROR"
    assert outcome.details["resolver"] == server.address
    assert outcome.details["protocol"] == "udp"
    if answers is not None:
        assert sorted(outcome.details["answers"]) == sorted(answers)
    assert "dns" in outcome.phases and outcome.latency_ms is not None


FAILURES = [
    pytest.param({"query-name": "www.dozor.test", "expect": ["127.0.0.1", "127.0.0.9"]},
                 ErrorCode.UNEXPECTED_ANSWER,
                 "the answer for www.dozor.test A lacks 127.0.0.9 (it has 127.0.0.1, 127.0.0.2)",
                 id="a missing value"),
    pytest.param({"query-name": "dozor.test", "record-type": "TXT", "expect": "V=SPF1 -all"},
                 ErrorCode.UNEXPECTED_ANSWER, "lacks V=SPF1 -all", id="TXT in another case"),
    pytest.param({"query-name": "gone.dozor.test"}, ErrorCode.DNS,
                 "answered NXDOMAIN for gone.dozor.test A, expected NOERROR",
                 id="an unknown name"),
    pytest.param({"query-name": "www.dozor.test", "expect-rcode": "nxdomain"},
                 ErrorCode.UNEXPECTED_ANSWER, "answered NOERROR for www.dozor.test A, "
                 "expected NXDOMAIN", id="a name that should be gone"),
    pytest.param({"query-name": "text-only.dozor.test"}, ErrorCode.UNEXPECTED_ANSWER,
                 "has no records for text-only.dozor.test A", id="a name without that type"),
]


@pytest.mark.parametrize(("config", "error", "message"), FAILURES)
async def test_wrong_answers_are_down(
    server: DnsServer, config: dict[str, Any], error: ErrorCode, message: str
) -> None:
    outcome = await run({**config, "resolver": server.address})
    assert outcome.error is error, outcome.message
    assert message in (outcome.message or "")
    assert "rcode" in outcome.details and "answers" in outcome.details


async def test_an_nxdomain_check_is_up_for_a_missing_name(server: DnsServer) -> None:
    outcome = await run({"query-name": "gone.dozor.test", "expect-rcode": "NXDOMAIN",
                         "resolver": server.address})
    assert outcome.ok, outcome.message
    assert outcome.details["rcode"] == "NXDOMAIN"


async def test_a_server_failure_is_a_dns_error(server: DnsServer) -> None:
    server.rcode = dns.rcode.SERVFAIL
    outcome = await run({"query-name": "www.dozor.test", "resolver": server.address})
    assert outcome.error is ErrorCode.DNS
    assert outcome.message == f"{server.address} answered SERVFAIL for www.dozor.test A, " \
        "expected NOERROR"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_a_silent_resolver_times_out(server: DnsServer, protocol: str) -> None:
    server.mute = True
    started = time.monotonic()
    outcome = await run({"query-name": "www.dozor.test", "resolver": server.address,
                         "protocol": protocol}, limit=0.3)
    assert time.monotonic() - started < 0.35
    assert outcome.error is ErrorCode.TIMEOUT
    assert outcome.message == f"no answer from {server.address} within 0.3s"


async def test_tcp_is_used_when_asked(server: DnsServer) -> None:
    outcome = await run({"query-name": "www.dozor.test", "resolver": server.address,
                         "protocol": "tcp"})
    assert outcome.ok, outcome.message
    assert outcome.details["protocol"] == "tcp"
    assert [query[0] for query in server.queries] == ["tcp"]


async def test_a_truncated_udp_answer_is_retried_over_tcp(server: DnsServer) -> None:
    server.truncate_udp = True
    outcome = await run({"query-name": "www.dozor.test", "resolver": server.address,
                         "expect": "127.0.0.1"})
    assert outcome.ok, outcome.message
    assert outcome.details["protocol"] == "tcp"
    assert [query[0] for query in server.queries] == ["udp", "tcp"]


async def test_a_resolver_given_by_name_is_looked_up(server: DnsServer) -> None:
    outcome = await run({"query-name": "www.dozor.test", "resolver": f"localhost:{server.port}"})
    assert outcome.ok, outcome.message
    assert outcome.details["resolver"] == server.address


async def test_the_system_resolvers_are_used_by_default(server: DnsServer) -> None:
    check = DnsCheck(nameservers=lambda: [("127.0.0.1", server.port)])
    outcome = await run({"query-name": "www.dozor.test"}, check=check)
    assert outcome.ok, outcome.message
    assert outcome.details["resolver"] == server.address


async def test_the_next_resolver_is_asked_when_one_is_silent(server: DnsServer) -> None:
    async with DnsServer() as silent:
        silent.mute = True
        servers: list[Nameserver] = [("127.0.0.1", silent.port), ("127.0.0.1", server.port)]
        outcome = await run({"query-name": "www.dozor.test"}, limit=0.6,
                            check=DnsCheck(nameservers=lambda: servers))
    assert outcome.ok, outcome.message
    assert outcome.details["resolver"] == server.address
    assert len(silent.queries) == 1


async def test_no_system_resolver_is_a_dns_error() -> None:
    outcome = await run({"query-name": "www.dozor.test"}, check=DnsCheck(nameservers=list))
    assert outcome.error is ErrorCode.DNS
    assert outcome.message == "no system resolver configured"


async def test_a_resolver_on_a_closed_tcp_port_is_refused(closed_port: int) -> None:
    outcome = await run({"query-name": "www.dozor.test", "resolver": f"127.0.0.1:{closed_port}",
                         "protocol": "tcp"})
    assert outcome.error is ErrorCode.DNS
    assert outcome.message == f"resolver 127.0.0.1:{closed_port} failed: connection refused"


INVALID = [
    pytest.param({}, "query-name", id="no name"),
    pytest.param({"query-name": "a..b"}, "query-name", id="an empty label"),
    pytest.param({"query-name": "a", "record-type": "ANY"}, "record-type",
                 id="an unsupported type"),
    pytest.param({"query-name": "a", "resolver": "127.0.0.1:99999"}, "resolver", id="a bad port"),
    pytest.param({"query-name": "a", "resolver": ":53"}, "resolver", id="no resolver host"),
    pytest.param({"query-name": "a", "protocol": "doh"}, "protocol", id="an unknown protocol"),
    pytest.param({"query-name": "a", "expect-rcode": "NOPE"}, "expect-rcode",
                 id="an unknown rcode"),
    pytest.param({"query-name": "a", "expect-rcode": "NXDOMAIN", "expect": ["1.2.3.4"]}, "expect",
                 id="values with an error rcode"),
    pytest.param({"query-name": "a", "type": "A"}, "type", id="an unknown field"),
]


@pytest.mark.parametrize(("config", "field"), INVALID)
def test_invalid_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        DnsConfig.model_validate(config)
    assert field in str(raised.value)


@pytest.mark.parametrize(("resolver", "target"), [
    ("192.0.2.53", "192.0.2.53"), ("[2001:db8::53]:5353", "2001:db8::53"),
    ("2001:db8::53", "2001:db8::53"), ("ns.example:53", "ns.example"),
])
def test_the_resolver_is_the_target_host(resolver: str, target: str) -> None:
    config = DnsConfig.model_validate({"query-name": "a", "resolver": resolver})
    assert config.target_host() == target
