"""Domain expiry over RDAP, against a local RDAP server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dozor.checks import rdap
from dozor.checks.base import CheckContext, parse_config
from dozor.checks.domain import DomainCheck, DomainConfig
from dozor.core.types import ErrorCode, Outcome
from dozor.outbound import Outbound
from tests.servers.rdap import NOT_FOUND, RdapServer, Reply, domain_answer

# Fixtures are found by name (rdap_server, rdap_outbound), so these look unused.
from tests.servers.rdap_fixtures import rdap_outbound_fixture, rdap_server_fixture  # noqa: F401

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run(
    check: DomainCheck, outbound: Outbound, now: datetime = NOW, seconds: float = 5.0,
    **config: Any,
) -> Outcome:
    ctx = CheckContext(timeout=seconds, outbound=outbound, now=now)
    return await check.run(DomainConfig.model_validate({"domain": "example.com", **config}), ctx)


async def run_direct(
    server: RdapServer, outbound: Outbound, reply: Reply, **config: Any
) -> Outcome:
    """Ask the server as ``rdap-url``, so no bootstrap is involved."""
    server.answer("example.com", reply)
    return await run(DomainCheck(server.bootstrap_url), outbound, rdap_url=server.base_url,
                     **config)


@pytest.mark.parametrize(
    ("left", "threshold", "message"),
    [
        (timedelta(days=100), 30, None),
        (timedelta(days=30), 30, None),
        (timedelta(days=29, hours=23), 30,
         "domain example.com expires in 29 days, on 2026-07-01 (warning at 30 days)"),
        (timedelta(days=1, hours=1), 30,
         "domain example.com expires in 1 day, on 2026-06-02 (warning at 30 days)"),
        (timedelta(days=5), 3, None),
        (timedelta(hours=10), 0, None),
        (timedelta(days=-2), 30, "domain example.com expired on 2026-05-30"),
        (timedelta(days=-2), 0, "domain example.com expired on 2026-05-30"),
    ],
)
async def test_fewer_days_left_than_the_threshold_is_down(
    rdap_server: RdapServer, rdap_outbound: Outbound, left: timedelta, threshold: int,
    message: str | None,
) -> None:
    reply = domain_answer(expires_at=NOW + left)
    outcome = await run_direct(rdap_server, rdap_outbound, reply, days_before_expiry=threshold)
    assert outcome.ok is (message is None), outcome.message
    assert outcome.message == message
    assert outcome.error is (None if message is None else ErrorCode.DOMAIN_EXPIRING)


async def test_details_describe_the_registration(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    reply = domain_answer(expires_at=datetime(2027, 8, 13, 4, tzinfo=UTC),
                          registered_at=datetime(1995, 8, 14, 4, tzinfo=UTC),
                          status=("client delete prohibited", "client transfer prohibited"))
    outcome = await run_direct(rdap_server, rdap_outbound, reply)
    assert outcome.ok
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    assert outcome.details == {
        "expires_at": "2027-08-13T04:00:00+00:00",
        "days_left": 437,
        "registrar": "Example Registrar, Inc.",
        "status": ["client delete prohibited", "client transfer prohibited"],
        "registered_at": "1995-08-14T04:00:00+00:00",
        "rdap_url": f"{rdap_server.base_url}domain/example.com",
    }


FUTURE = NOW + timedelta(days=365)


@pytest.mark.parametrize(
    ("reply", "error", "fragment"),
    [
        (NOT_FOUND, ErrorCode.PROTOCOL, "domain example.com not found in RDAP"),
        (Reply(raw="<html>busy</html>"), ErrorCode.PROTOCOL, "is not JSON"),
        (Reply(raw=""), ErrorCode.PROTOCOL, "is not JSON"),
        (Reply([1, 2]), ErrorCode.PROTOCOL, "not a JSON object"),
        (domain_answer(expires_at=None), ErrorCode.PROTOCOL, "has no expiration event"),
        (Reply({"errorCode": 400, "title": "Bad Request"}), ErrorCode.PROTOCOL,
         "RDAP error 400: Bad Request"),
        (Reply({}, status=500), ErrorCode.PROTOCOL, "answered HTTP 500"),
        (Reply({}, status=429), ErrorCode.PROTOCOL, "rate limiting"),
        (domain_answer(extra_events=({"eventAction": "expiration", "eventDate": "soon"},)),
         ErrorCode.PROTOCOL, "the RDAP expiration date 'soon' is not a date"),
        (domain_answer(expires_at=FUTURE, status=("redemption period",)),
         ErrorCode.DOMAIN_EXPIRING, "is in status 'redemption period'"),
        (domain_answer(expires_at=FUTURE, status=("pending delete",)),
         ErrorCode.DOMAIN_EXPIRING, "is in status 'pending delete'"),
    ],
)
async def test_unusable_answers_are_down_with_a_clear_message(
    rdap_server: RdapServer, rdap_outbound: Outbound, reply: Reply, error: ErrorCode,
    fragment: str,
) -> None:
    outcome = await run_direct(rdap_server, rdap_outbound, reply)
    assert not outcome.ok
    assert outcome.error is error
    assert outcome.message is not None and fragment in outcome.message, outcome.message


async def test_a_subdomain_not_found_gets_a_hint(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    outcome = await run(DomainCheck(), rdap_outbound, domain="www.example.com",
                        rdap_url=rdap_server.base_url)
    assert outcome.message is not None and "not a subdomain" in outcome.message


async def test_an_oversized_answer_is_refused(
    rdap_server: RdapServer, rdap_outbound: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rdap, "RESPONSE_LIMIT", 100)
    outcome = await run_direct(rdap_server, rdap_outbound, domain_answer(expires_at=FUTURE))
    assert outcome.error is ErrorCode.PROTOCOL
    assert outcome.message is not None and "larger than" in outcome.message


async def test_a_large_answer_is_read_to_the_end(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    reply = domain_answer(expires_at=FUTURE)
    reply.body["remarks"] = [{"description": ["x" * 1000] * 1000}]  # about 1 MB
    outcome = await run_direct(rdap_server, rdap_outbound, reply)
    assert outcome.ok, outcome.message


async def test_a_slow_server_times_out_naming_what_it_waited_for(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.answer("example.com", Reply(domain_answer(expires_at=FUTURE).body, delay=5))
    started = time.monotonic()
    outcome = await run(DomainCheck(), rdap_outbound, seconds=0.2,
                        rdap_url=rdap_server.base_url)
    assert time.monotonic() - started < 2
    assert outcome.error is ErrorCode.TIMEOUT
    assert outcome.message == (
        f"no answer within 0.2s from {rdap_server.base_url}domain/example.com"
    )


async def test_a_closed_port_is_a_connection_error(rdap_outbound: Outbound) -> None:
    outcome = await run(DomainCheck(), rdap_outbound,
                        rdap_url=f"http://127.0.0.1:{closed_port()}/rdap")
    assert outcome.error is ErrorCode.CONNECTION
    assert outcome.message is not None and "cannot reach http://127.0.0.1:" in outcome.message


async def test_without_outbound_http_the_check_cannot_run() -> None:
    config = DomainConfig(domain="example.com")
    outcome = await DomainCheck().run(config, CheckContext(timeout=1))
    assert outcome.error is ErrorCode.INTERNAL


async def test_an_idn_is_asked_for_in_punycode(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.answer("xn--bcher-kva.com", domain_answer(expires_at=FUTURE))
    outcome = await run(DomainCheck(), rdap_outbound, domain="Bücher.com",
                        rdap_url=rdap_server.base_url)
    assert outcome.ok, outcome.message
    assert rdap_server.requests["/rdap/domain/xn--bcher-kva.com"] == 1


# -- the bootstrap registry -------------------------------------------------------------


async def test_without_rdap_url_the_bootstrap_registry_finds_the_server(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.serve_bootstrap(["net", "com"])
    rdap_server.answer("example.com", domain_answer(expires_at=FUTURE))
    outcome = await run(DomainCheck(rdap_server.bootstrap_url), rdap_outbound)
    assert outcome.ok, outcome.message
    assert outcome.details["rdap_url"] == f"{rdap_server.base_url}domain/example.com"


async def test_the_bootstrap_registry_is_fetched_once_a_day(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.serve_bootstrap(["com"])
    rdap_server.answer("example.com", domain_answer(expires_at=FUTURE))
    check = DomainCheck(rdap_server.bootstrap_url)
    for now, fetches in [(NOW, 1), (NOW + timedelta(hours=23), 1), (NOW + timedelta(days=1), 2),
                         (NOW - timedelta(hours=1), 3)]:  # a clock set back refetches
        assert (await run(check, rdap_outbound, now=now)).ok
        assert rdap_server.requests["/dns.json"] == fetches, now


async def test_an_old_bootstrap_copy_serves_while_iana_fails(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.serve_bootstrap(["com"])
    rdap_server.answer("example.com", domain_answer(expires_at=FUTURE))
    check = DomainCheck(rdap_server.bootstrap_url)
    assert (await run(check, rdap_outbound)).ok
    rdap_server.bootstrap = Reply({}, status=503)
    later = NOW + timedelta(days=2)
    for now, fetches in [(later, 2), (later + timedelta(seconds=30), 2),
                         (later + timedelta(seconds=61), 3)]:
        assert (await run(check, rdap_outbound, now=now)).ok
        assert rdap_server.requests["/dns.json"] == fetches, now


async def test_a_failing_bootstrap_is_retried_after_a_minute_not_at_once(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.bootstrap = Reply({}, status=503)
    check = DomainCheck(rdap_server.bootstrap_url)
    for now, fetches in [(NOW, 1), (NOW + timedelta(seconds=59), 1),
                         (NOW + timedelta(seconds=60), 2)]:
        outcome = await run(check, rdap_outbound, now=now)
        assert outcome.message == f"{rdap_server.bootstrap_url} answered HTTP 503"
        assert rdap_server.requests["/dns.json"] == fetches, now


@pytest.mark.parametrize(
    ("bootstrap", "error", "fragment"),
    [
        (Reply({"services": [[["net"], ["https://rdap.invalid/"]]]}), ErrorCode.PROTOCOL,
         "no RDAP server for .com in the IANA bootstrap registry"),
        (Reply({"version": "1.0"}), ErrorCode.PROTOCOL, "has no services list"),
        (Reply(raw="not json"), ErrorCode.PROTOCOL, "is not JSON"),
        (NOT_FOUND, ErrorCode.PROTOCOL, "the RDAP bootstrap registry is not at"),
    ],
)
async def test_a_bad_bootstrap_registry_is_reported(
    rdap_server: RdapServer, rdap_outbound: Outbound, bootstrap: Reply, error: ErrorCode,
    fragment: str,
) -> None:
    rdap_server.bootstrap = bootstrap
    outcome = await run(DomainCheck(rdap_server.bootstrap_url), rdap_outbound)
    assert outcome.error is error
    assert outcome.message is not None and fragment in outcome.message, outcome.message


async def test_an_unreachable_bootstrap_registry_is_a_connection_error(
    rdap_outbound: Outbound,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/dns.json"
    outcome = await run(DomainCheck(url), rdap_outbound)
    assert outcome.error is ErrorCode.CONNECTION
    assert outcome.message is not None and url in outcome.message


async def test_a_slow_bootstrap_registry_times_out(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.bootstrap = Reply({"services": []}, delay=5)
    outcome = await run(DomainCheck(rdap_server.bootstrap_url), rdap_outbound, seconds=0.2)
    assert outcome.message == "no answer within 0.2s from the RDAP bootstrap registry"


async def test_the_longest_matching_suffix_picks_the_server(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    rdap_server.serve_bootstrap(["uk"], (["co.uk"], [f"{rdap_server.url}/couk"]))
    rdap_server.answer("example.co.uk", domain_answer(expires_at=FUTURE))
    rdap_server.answer("example.uk", domain_answer(expires_at=FUTURE))
    check = DomainCheck(rdap_server.bootstrap_url)
    assert (await run(check, rdap_outbound, domain="example.co.uk")).ok
    assert (await run(check, rdap_outbound, domain="example.uk")).ok
    assert rdap_server.requests["/couk/domain/example.co.uk"] == 1
    assert rdap_server.requests["/rdap/domain/example.uk"] == 1


async def test_the_bootstrap_url_can_be_changed_on_the_registered_check(
    rdap_server: RdapServer, rdap_outbound: Outbound
) -> None:
    check = DomainCheck()
    assert check.bootstrap_url == "https://data.iana.org/rdap/dns.json"
    check.bootstrap_url = rdap_server.bootstrap_url
    rdap_server.serve_bootstrap(["com"])
    rdap_server.answer("example.com", domain_answer(expires_at=FUTURE))
    assert (await run(check, rdap_outbound)).ok


def test_https_servers_are_preferred_in_the_bootstrap_registry() -> None:
    services = rdap.parse_bootstrap({"services": [
        [["com"], ["http://plain.example/", "https://secure.example/"]],
        "garbage", [["net"], []], [[1, "org"], ["ftp://x/", "https://org.example/"]],
    ]})
    assert services == {"com": ("https://secure.example/", "http://plain.example/"),
                        "org": ("https://org.example/",)}


# -- reading answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-08-13T04:00:00Z", datetime(2027, 8, 13, 4, tzinfo=UTC)),
        ("2027-08-13T04:00:00.000+00:00", datetime(2027, 8, 13, 4, tzinfo=UTC)),
        ("2027-08-13T06:00:00+02:00", datetime(2027, 8, 13, 4, tzinfo=UTC)),
        ("2027-08-13T04:00:00", datetime(2027, 8, 13, 4, tzinfo=UTC)),  # no zone means UTC
    ],
)
def test_event_dates_are_read_in_the_forms_registries_send(
    text: str, expected: datetime
) -> None:
    record = rdap.parse_domain({"events": [{"eventAction": "expiration", "eventDate": text}]})
    assert record.expires_at == expected


@pytest.mark.parametrize(
    ("entities", "registrar"),
    [
        ([], None),
        ([{"roles": ["technical"], "vcardArray": ["vcard", [["fn", {}, "text", "Tech"]]]}],
         None),
        ([{"roles": ["registrar"], "handle": "292"}], "292"),
        ([{"roles": ["registrant"], "entities": [
            {"roles": ["registrar"], "vcardArray": ["vcard", [["fn", {}, "text", "Nested"]]]}]}],
         "Nested"),
        ([{"roles": ["registrar"], "vcardArray": "broken", "handle": " "}], None),
    ],
)
def test_the_registrar_is_the_name_of_the_registrar_entity(
    entities: list[Any], registrar: str | None
) -> None:
    assert rdap.parse_domain({"entities": entities}).registrar == registrar


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "normalized"),
    [("example.com", "example.com"), ("  Example.COM. ", "example.com"),
     ("bücher.de", "xn--bcher-kva.de"), ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
     ("xn--bcher-kva.de", "xn--bcher-kva.de"), ("a-b.co.uk", "a-b.co.uk")],
)
def test_domains_are_normalized_to_lower_case_ascii(domain: str, normalized: str) -> None:
    assert DomainConfig(domain=domain).domain == normalized


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"domain": ""}, "domain"),
        ({"domain": "https://example.com/"}, "domain"),
        ({"domain": "example"}, "top-level domain"),
        ({"domain": "192.0.2.1"}, "IP address"),
        ({"domain": "-bad.com"}, "domain"),
        ({"domain": "under_score.com"}, "domain"),
        ({"domain": "a" * 64 + ".com"}, "domain"),
        ({"domain": "exa mple.com"}, "domain"),
        ({"domain": "example.com", "days-before-expiry": -1}, "days-before-expiry"),
        ({"domain": "example.com", "rdap-url": "ftp://rdap.example/"}, "rdap-url"),
        ({"domain": "example.com", "rdap-url": "rdap.example"}, "rdap-url"),
        ({"domain": "example.com", "rdap-url": "https://rdap.example/?q=1"}, "rdap-url"),
        ({"domain": "example.com", "expiry": 30}, "expiry"),
        ({}, "domain"),
    ],
)
def test_bad_config_is_refused_naming_the_field(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_config("domain", data)
    assert named in str(caught.value)


def test_config_reads_kebab_case_and_points_the_host_limit_at_the_rdap_server() -> None:
    config = parse_config("domain", {"domain": "example.com", "days-before-expiry": 14,
                                     "rdap-url": "https://rdap.example/v1"})
    assert isinstance(config, DomainConfig)
    assert config.days_before_expiry == 14
    assert config.rdap_url == "https://rdap.example/v1/"
    assert config.target_host() == "rdap.example"
    assert DomainConfig(domain="example.com").target_host() is None
