from __future__ import annotations

import gzip
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from pydantic import ValidationError

from dozor.checks.base import CheckContext
from dozor.checks.http import HttpCheck, HttpConfig
from dozor.core.types import PHASES, ErrorCode, Outcome
from dozor.outbound import Outbound
from tests.servers.http import LocalHttpServer, RawServer, SlowHandshakeServer, server_ssl_context

SECRET = "s3cret-Pa55word"


def make_config(**fields: Any) -> HttpConfig:
    return HttpConfig.model_validate(fields)


async def run(config: HttpConfig, outbound: Outbound | None, limit: float = 5.0) -> Outcome:
    return await HttpCheck().run(config, CheckContext(timeout=limit, outbound=outbound))


def assert_outcome(outcome: Outcome, ok: bool, error: ErrorCode | None, message: str) -> None:
    assert (outcome.ok, outcome.error) == (ok, error), outcome.message
    assert message in (outcome.message or "")


# --- status -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "fields", "ok", "error", "message"), [
    ("/status/200", {}, True, None, ""),
    ("/status/399", {}, True, None, ""),
    ("/status/503", {}, False, ErrorCode.HTTP_STATUS, "expected status 200-399, got 503"),
    ("/status/404", {"expected-status": 404}, True, None, ""),
    ("/status/204", {"expected-status": ["200-299"]}, True, None, ""),
    ("/status/500", {"expected-status": "200,204"}, False, ErrorCode.HTTP_STATUS,
     "expected status 200, 204, got 500"),
    ("/status/503", {"conditions": ["[STATUS] == 503"]}, True, None, ""),
    ("/status/200", {"conditions": ["[STATUS] == 503"]}, False, ErrorCode.ASSERTION,
     "condition failed: [STATUS] (200) == 503"),
])
async def test_the_status_code_decides_up_or_down(
    http_server: LocalHttpServer, outbound: Outbound, path: str, fields: dict[str, Any],
    ok: bool, error: ErrorCode | None, message: str,
) -> None:
    outcome = await run(make_config(url=http_server.url(path), **fields), outbound)
    assert_outcome(outcome, ok, error, message)
    assert outcome.details["status"] == int(path.rsplit("/", 1)[1])


async def test_an_up_outcome_carries_latency_and_details(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    outcome = await run(make_config(url=http_server.url("/status/200")), outbound)
    assert outcome.ok and outcome.latency_ms is not None and outcome.latency_ms > 0
    assert outcome.latency_ms == outcome.phases["total"]
    assert outcome.details == {"status": 200, "final_url": http_server.url("/status/200"),
                               "size_bytes": len("status 200"), "ip": "127.0.0.1"}


# --- keywords -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "ok", "message"), [
    ({"keyword": "healthy"}, True, ""),
    ({"keyword": "HEALTHY"}, True, ""),
    ({"keyword": "healthy", "keyword-case-sensitive": True}, False,
     "keyword 'healthy' not found"),
    ({"keyword": "Healthy", "keyword-case-sensitive": True}, True, ""),
    ({"keyword": "broken"}, False, "keyword 'broken' not found"),
    ({"keyword-absent": "error"}, True, ""),
    ({"keyword-absent": "HEALTHY"}, False, "keyword 'HEALTHY' found, but must be absent"),
    ({"keyword-absent": "HEALTHY", "keyword-case-sensitive": True}, True, ""),
    ({"keyword": "Service", "keyword-absent": "down"}, True, ""),
])
async def test_keywords_must_be_present_or_absent(
    http_server: LocalHttpServer, outbound: Outbound, fields: dict[str, Any], ok: bool,
    message: str,
) -> None:
    url = http_server.serve("/page", body="<h1>Service is Healthy</h1>")
    outcome = await run(make_config(url=url, **fields), outbound)
    assert_outcome(outcome, ok, None if ok else ErrorCode.KEYWORD, message)


async def test_a_keyword_is_found_in_a_body_in_another_charset(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    url = http_server.serve("/latin", body="Größe".encode("latin-1"),
                            headers={"Content-Type": "text/plain; charset=latin-1"})
    assert (await run(make_config(url=url, keyword="größe"), outbound)).ok


# --- the body cap and when the body is read -----------------------------------------------

@pytest.mark.parametrize("route", ["/bytes/5000", "/stream/50000"])
async def test_only_max_body_bytes_are_read(
    http_server: LocalHttpServer, outbound: Outbound, route: str,
) -> None:
    config = make_config(url=http_server.url(route), keyword="b", max_body_bytes=1000)
    outcome = await run(config, outbound)
    assert_outcome(outcome, False, ErrorCode.KEYWORD,
                   "keyword 'b' not found in the first 1000 bytes")
    assert outcome.details["size_bytes"] == 1000
    assert outcome.details["body_truncated"] is True


async def test_a_small_compressed_body_that_inflates_past_the_cap_is_cut(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    bomb = gzip.compress(b"\0" * 5 * 1024 * 1024)  # about 5 KB on the wire
    assert len(bomb) < 10_000
    url = http_server.serve("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    outcome = await run(make_config(url=url, keyword="x", max_body_bytes=10_000), outbound)
    assert_outcome(outcome, False, ErrorCode.KEYWORD, "in the first 10000 bytes")
    assert outcome.details["size_bytes"] == 10_000


async def test_a_body_within_the_cap_is_read_whole(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    config = make_config(url=http_server.url("/stream/3000"), keyword="a", max_body_bytes=3000)
    outcome = await run(config, outbound)
    assert outcome.ok
    assert outcome.details["size_bytes"] == 3000 and "body_truncated" not in outcome.details


@pytest.mark.parametrize(("fields", "ok"), [
    ({}, True),
    ({"conditions": ["[STATUS] == 200", "[HEADER].Content-Length == 4"]}, True),
    ({"keyword": "late"}, False),
    ({"conditions": ["[BODY] == late"]}, False),
])
async def test_the_body_is_downloaded_only_when_a_keyword_or_condition_reads_it(
    http_server: LocalHttpServer, outbound: Outbound, fields: dict[str, Any], ok: bool,
) -> None:
    # Headers come at once, the body after 2 s: reading it would time out.
    outcome = await run(make_config(url=http_server.url("/slow-body/2"), **fields), outbound,
                        limit=0.5)
    if ok:
        assert outcome.ok, outcome.message
    else:
        assert_outcome(outcome, False, ErrorCode.TIMEOUT,
                       "timed out after 0.5s reading the response")


# --- conditions ---------------------------------------------------------------------------

HEALTH = {"status": "UP", "db": {"ok": True}, "items": [1, 2, 3], "name": "john-7"}


@pytest.mark.parametrize(("conditions", "ok", "message"), [
    (["[BODY].status == UP"], True, ""),
    (["[BODY].db.ok == true", "len([BODY].items) == 3", "[BODY].items[0] == 1"], True, ""),
    (["[BODY].name == pat(john-*)", "[STATUS] == any(200, 201)"], True, ""),
    (["[HEADER].content-type == pat(application/json*)"], True, ""),
    (["[IP] == 127.0.0.1", "[CONNECTED] == true", "[RESPONSE_TIME] < 5s"], True, ""),
    (["[BODY].status == DOWN"], False, "condition failed: [BODY].status (UP) == DOWN"),
    (["[BODY].db.ok == true", "len([BODY].items) > 5"], False,
     "condition failed: len([BODY].items) (3) > 5"),
    (["[BODY].missing.x == 1"], False, "[BODY].missing.x (missing: no key 'missing') == 1"),
    (["[CERTIFICATE_EXPIRATION] > 14d"], False,
     "(missing: no [CERTIFICATE_EXPIRATION] for this check)"),
])
async def test_conditions_judge_the_json_body_and_more(
    http_server: LocalHttpServer, outbound: Outbound, conditions: list[str], ok: bool,
    message: str,
) -> None:
    url = http_server.serve("/health", json=HEALTH)
    outcome = await run(make_config(url=url, conditions=conditions), outbound)
    assert_outcome(outcome, ok, None if ok else ErrorCode.ASSERTION, message)


async def test_conditions_on_a_body_that_is_not_json_fail_clearly(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    url = http_server.serve("/html", body="<html>fine</html>")
    outcome = await run(make_config(url=url, conditions=["[BODY].status == UP"]), outbound)
    assert_outcome(outcome, False, ErrorCode.ASSERTION, "(missing: the body is not JSON)")


# --- speed and timeouts -------------------------------------------------------------------

@pytest.mark.parametrize(("limit", "ok", "message"), [
    ("2s", True, ""),
    (5000, True, ""),
    ("100ms", False, "more than the 100ms allowed"),
    (100, False, "more than the 100ms allowed"),
])
async def test_a_response_slower_than_allowed_is_too_slow(
    http_server: LocalHttpServer, outbound: Outbound, limit: Any, ok: bool, message: str,
) -> None:
    config = make_config(url=http_server.url("/delay/0.3"), max_response_time=limit)
    outcome = await run(config, outbound)
    assert_outcome(outcome, ok, None if ok else ErrorCode.TOO_SLOW, message)
    assert outcome.latency_ms is not None and outcome.latency_ms >= 300


async def test_a_server_slower_than_the_timeout_is_a_timeout(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    outcome = await run(make_config(url=http_server.url("/delay/3")), outbound, limit=0.3)
    assert_outcome(outcome, False, ErrorCode.TIMEOUT,
                   "timed out after 0.3s waiting for the response")
    assert "first_byte" not in outcome.phases and "connect" in outcome.phases
    assert outcome.details == {"ip": "127.0.0.1"}


# --- redirects ----------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "ok", "error", "message", "status", "redirects"), [
    ({}, True, None, "", 200, 3),
    ({"follow-redirects": False}, True, None, "", 302, None),
    ({"follow-redirects": False, "expected-status": 200}, False, ErrorCode.HTTP_STATUS,
     "expected status 200, got 302", 302, None),
    ({"max-redirects": 2}, False, ErrorCode.PROTOCOL, "too many redirects", None, None),
])
async def test_redirects_are_followed_unless_turned_off(
    http_server: LocalHttpServer, outbound: Outbound, fields: dict[str, Any], ok: bool,
    error: ErrorCode | None, message: str, status: int | None, redirects: int | None,
) -> None:
    outcome = await run(make_config(url=http_server.url("/redirect/3"), **fields), outbound)
    assert_outcome(outcome, ok, error, message)
    assert outcome.details.get("status") == status
    assert outcome.details.get("redirects") == redirects
    if redirects:
        assert outcome.details["final_url"] == http_server.url("/redirect/0")


async def test_phases_add_up_over_redirect_hops(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    outcome = await run(make_config(url=http_server.url("/redirect/3")), outbound)
    phases = outcome.phases
    assert phases["connect"] + phases["first_byte"] <= phases["total"]


# --- TLS ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cert", "fields", "ok", "error", "message"), [
    ("good", {"ca": "inline"}, True, None, ""),
    ("good", {"ca": "file"}, True, None, ""),
    ("good", {}, False, ErrorCode.CERTIFICATE_INVALID, "unable to get local issuer"),
    ("good", {"verify-tls": False}, True, None, ""),
    ("expired", {"ca": "inline"}, False, ErrorCode.CERTIFICATE_INVALID,
     "certificate has expired"),
    ("expired", {"verify-tls": False}, True, None, ""),
    ("wrong-host", {"ca": "inline"}, False, ErrorCode.CERTIFICATE_INVALID,
     "Hostname mismatch"),
    ("wrong-host", {"verify-tls": False}, True, None, ""),
])
async def test_tls_is_verified_against_the_configured_ca(
    server_certs: dict[str, trustme.LeafCert], outbound: Outbound, ca_pem: str,
    tmp_path: Path, cert: str, fields: dict[str, Any], ok: bool, error: ErrorCode | None,
    message: str,
) -> None:
    if fields.get("ca") == "inline":
        fields = {**fields, "ca": ca_pem}
    elif fields.get("ca") == "file":
        (tmp_path / "ca.pem").write_text(ca_pem)
        fields = {**fields, "ca": str(tmp_path / "ca.pem")}
    async with LocalHttpServer(ssl_context=server_ssl_context(server_certs[cert])) as https:
        config = make_config(url=https.url("/status/200", host="localhost"), **fields)
        outcome = await run(config, outbound)
    assert_outcome(outcome, ok, error, message)


async def test_an_https_outcome_reports_the_certificate_expiry(
    https_server: LocalHttpServer, outbound: Outbound, ca_pem: str,
    server_cert: trustme.LeafCert,
) -> None:
    outcome = await run(make_config(url=https_server.url("/status/200"), ca=ca_pem), outbound)
    assert outcome.ok, outcome.message
    expires = x509.load_pem_x509_certificate(server_cert.cert_chain_pems[0].bytes())
    assert outcome.details["certificate_expires_at"] == expires.not_valid_after_utc.isoformat()
    assert outcome.details["certificate_days_left"] > 300


async def test_an_expired_certificate_shows_negative_days_when_not_verified(
    server_certs: dict[str, trustme.LeafCert], outbound: Outbound,
) -> None:
    async with LocalHttpServer(ssl_context=server_ssl_context(server_certs["expired"])) as https:
        config = make_config(url=https.url("/status/200"), verify_tls=False,
                             conditions=["[CERTIFICATE_EXPIRATION] > 14d"])
        outcome = await run(config, outbound)
    assert_outcome(outcome, False, ErrorCode.ASSERTION, "[CERTIFICATE_EXPIRATION] (-")
    assert outcome.details["certificate_days_left"] < 0


async def test_speaking_tls_to_a_plain_http_server_is_a_tls_error(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    url = http_server.url("/status/200").replace("http://", "https://")
    outcome = await run(make_config(url=url, verify_tls=False), outbound)
    assert_outcome(outcome, False, ErrorCode.TLS,
                   f"TLS handshake with 127.0.0.1:{http_server.port} failed")


# --- phases -------------------------------------------------------------------------------

async def test_https_phases_are_all_there_in_order_and_add_up(
    https_server: LocalHttpServer, outbound: Outbound, ca_pem: str,
) -> None:
    url = https_server.url("/status/200", host="localhost")
    outcome = await run(make_config(url=url, ca=ca_pem), outbound)
    assert outcome.ok, outcome.message
    phases = outcome.phases
    assert list(phases) == list(PHASES)
    assert all(value >= 0 for value in phases.values())
    assert phases["dns"] > 0  # localhost is looked up; an IP address would give 0
    assert sum(phases[name] for name in PHASES[:-1]) <= phases["total"]


async def test_an_ip_address_needs_no_lookup_and_plain_http_no_tls(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    outcome = await run(make_config(url=http_server.url("/status/200")), outbound)
    assert list(outcome.phases) == ["dns", "connect", "first_byte", "total"]
    assert outcome.phases["dns"] == 0


async def test_the_tls_handshake_is_timed_apart_from_the_tcp_connect(
    server_cert: trustme.LeafCert, outbound: Outbound, ca_pem: str,
) -> None:
    # The server accepts TCP at once and starts TLS 0.25 s later: that wait is handshake.
    async with SlowHandshakeServer(server_ssl_context(server_cert), delay=0.25) as server:
        outcome = await run(make_config(url=server.url(), ca=ca_pem), outbound)
    assert outcome.ok, outcome.message
    assert outcome.phases["tls"] >= 250
    assert outcome.phases["connect"] < 250


# --- connection failures ------------------------------------------------------------------

def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class FailingResolver(AbstractResolver):
    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        pass


async def test_a_closed_port_is_connection_refused(outbound: Outbound) -> None:
    port = unused_port()
    outcome = await run(make_config(url=f"http://127.0.0.1:{port}/"), outbound)
    assert_outcome(outcome, False, ErrorCode.CONNECTION_REFUSED,
                   f"connection refused by 127.0.0.1:{port}")
    assert outcome.latency_ms is None and "total" in outcome.phases


async def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    outbound = Outbound(user_agent="dozor-test", resolver=FailingResolver())
    try:
        outcome = await run(make_config(url="http://no-such-host.test/"), outbound)
    finally:
        await outbound.close()
    assert_outcome(outcome, False, ErrorCode.DNS,
                   "cannot resolve no-such-host.test: Name or service not known")


@pytest.mark.parametrize(("reply", "error", "message"), [
    (b"", ErrorCode.CONNECTION, "the server closed the connection without answering"),
    (b"garbage\r\n\r\n", ErrorCode.PROTOCOL, "invalid HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", ErrorCode.PROTOCOL,
     "the response body was cut off"),
])
async def test_a_broken_server_is_described(
    outbound: Outbound, reply: bytes, error: ErrorCode, message: str,
) -> None:
    async with RawServer(reply) as server:
        outcome = await run(make_config(url=server.url(), keyword="x"), outbound)
    assert_outcome(outcome, False, error, message)


async def test_an_outcome_without_an_outbound_client_is_an_internal_error() -> None:
    outcome = await run(make_config(url="http://127.0.0.1/"), None)
    assert_outcome(outcome, False, ErrorCode.INTERNAL, "needs an outbound client")


# --- address family -----------------------------------------------------------------------

async def test_ipv6_is_used_when_preferred(
    ipv6_server: LocalHttpServer, outbound: Outbound,
) -> None:
    config = make_config(url=ipv6_server.url("/status/200"), ip_family="ipv6")
    outcome = await run(config, outbound)
    assert outcome.ok, outcome.message
    assert outcome.details["ip"] == "::1"


# --- what is sent -------------------------------------------------------------------------

async def test_method_headers_and_body_are_sent_as_configured(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    config = make_config(url=http_server.url("/echo"), method="post", body='{"ping": 1}',
                         headers={"X-Probe": "dozor", "Content-Type": "application/json"},
                         conditions=["[BODY].method == POST"])
    outcome = await run(config, outbound)
    assert outcome.ok, outcome.message
    sent = http_server.requests[-1]
    assert (sent.method, json.loads(sent.body)) == ("POST", {"ping": 1})
    assert sent.headers["X-Probe"] == "dozor"
    assert sent.headers["User-Agent"] == "dozor-test"


@pytest.mark.parametrize(("path", "fields", "ok"), [
    ("/basic-auth", {"basic-auth": {"username": "alice", "password": SECRET}}, True),
    ("/basic-auth", {"basic-auth": {"username": "bob", "password": SECRET}}, False),
    ("/basic-auth", {"basic-auth": {"username": "alice", "password": "wrong"}}, False),
    ("/bearer", {"bearer-token": SECRET}, True),
    ("/bearer", {"bearer-token": "wrong"}, False),
])
async def test_credentials_are_sent_but_never_shown(
    http_server: LocalHttpServer, outbound: Outbound, path: str, fields: dict[str, Any],
    ok: bool,
) -> None:
    http_server.users["alice"] = SECRET
    http_server.tokens.add(SECRET)
    config = make_config(url=http_server.url(path), keyword="authenticated", **fields)
    outcome = await run(config, outbound)
    assert outcome.ok is ok, outcome.message
    if not ok:
        assert_outcome(outcome, False, ErrorCode.HTTP_STATUS, "expected status 200-399, got 401")
    shown = [repr(outcome), repr(config), str(config), config.model_dump_json(),
             json.dumps(config.model_dump(mode="json"))]
    assert not any(SECRET in text for text in shown)


async def test_credentials_do_not_follow_a_redirect_to_another_host(
    http_server: LocalHttpServer, outbound: Outbound,
) -> None:
    url = http_server.serve("/away", status=302, headers={
        "Location": http_server.url("/headers", host="localhost")})
    outcome = await run(make_config(url=url, bearer_token=SECRET), outbound)
    assert outcome.ok, outcome.message
    assert "Authorization" not in http_server.requests[-1].headers


# --- config validation --------------------------------------------------------------------

URL = "https://example.test/"


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ({"url": "ftp://example.test/"}, "url", "must start with http:// or https://"),
    ({"url": "example.test"}, "url", "must start with http:// or https://"),
    ({"url": "https://"}, "url", "no host"),
    ({"url": f"https://alice:{SECRET}@example.test/"}, "url", "put credentials in basic-auth"),
    ({"url": URL, "method": "FETCH"}, "method", "Input should be"),
    ({"url": URL, "expected-status": "abc"}, "expected-status", "not a status code"),
    ({"url": URL, "expected-status": "600"}, "expected-status", "from 100 to 599"),
    ({"url": URL, "expected-status": "300-200"}, "expected-status", "low before high"),
    ({"url": URL, "expected-status": []}, "expected-status", "at least one"),
    ({"url": URL, "conditions": ["[STATUS] = 200"]}, "conditions", "unknown operator"),
    ({"url": URL, "conditions": ["[NOPE] == 1"]}, "conditions", "unknown placeholder"),
    ({"url": URL, "max-response-time": "soon"}, "max-response-time", "not a duration"),
    ({"url": URL, "max-response-time": 0}, "max-response-time", "more than zero"),
    ({"url": URL, "ca": "/no/such/ca.pem"}, "ca", "cannot read the CA file /no/such/ca.pem"),
    ({"url": URL, "ca": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
     "ca", "not a PEM certificate"),
    ({"url": URL, "ip-family": "ipv5"}, "ip-family", "Input should be"),
    ({"url": "http://[::1]/", "ip-family": "ipv4"}, None, "ipv4 cannot reach the address ::1"),
    ({"url": "http://127.0.0.1/", "ip-family": "ipv6"}, None,
     "ipv6 cannot reach the address 127.0.0.1"),
    ({"url": URL, "method": "HEAD", "keyword": "ok"}, None, "a HEAD response has no body"),
    ({"url": URL, "basic-auth": {"username": "a:b", "password": "c"}}, "basic-auth",
     "should match pattern"),
    ({"url": URL, "max-body-bytes": 0}, "max-body-bytes", "greater than or equal to 1"),
    ({"url": URL, "max-redirects": 0}, "max-redirects", "greater than or equal to 1"),
    ({"url": URL, "keyword": ""}, "keyword", "at least 1 character"),
    ({"url": URL, "headers": {"X-Bad": "a\r\nb"}}, "headers", "spans lines"),
    ({"url": URL, "basic-auth": {"username": "alice"}}, "basic-auth", "Field required"),
    ({"url": URL, "bearer-token": 12345}, "bearer-token", "string"),
    ({"url": URL, "urll": URL}, "urll", "Extra inputs are not permitted"),
])
def test_a_bad_config_is_an_error_naming_the_field(
    fields: dict[str, Any], field: str | None, problem: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        HttpConfig.model_validate(fields)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert errors[0]["loc"][:1] == ((field,) if field else ())  # None: about two fields
    assert problem in errors[0]["msg"]
    assert SECRET not in str(caught.value) and "12345" not in str(caught.value)


@pytest.mark.parametrize("fields", [
    {"basic-auth": {"username": "a", "password": "b"}, "bearer-token": "c"},
    {"bearer-token": "c", "headers": {"authorization": "Basic x"}},
])
def test_only_one_kind_of_credentials_is_allowed(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="use one of basic-auth, bearer-token"):
        make_config(url=URL, **fields)


def test_defaults_are_the_usual_monitoring_ones() -> None:
    config = make_config(url=URL)
    assert (config.method, config.accepted_status, config.follow_redirects, config.verify_tls,
            config.ip_family, config.max_body_bytes, config.keyword_case_sensitive) == (
        "GET", ((200, 399),), True, True, "any", 1024 * 1024, False)
    assert config.tls is True and not config.needs_body


def test_the_target_host_is_the_urls_host() -> None:
    assert make_config(url="https://Example.TEST:8443/x").target_host() == "example.test"


def test_a_config_survives_a_round_trip_through_json(ca_pem: str) -> None:
    config = make_config(url=URL, expected_status=["200-299", 304], max_response_time="1500ms",
                         conditions=["[BODY].status == UP"], keyword="ok", ca=ca_pem)
    dumped = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["expected-status"] == ["200-299", "304"]
    assert dumped["max-response-time"] == "1500ms"
    assert dumped["conditions"] == ["[BODY].status == UP"]
    assert HttpConfig.model_validate(dumped) == config


def test_only_a_body_condition_makes_the_body_needed() -> None:
    assert not make_config(url=URL, conditions=["[STATUS] == 200"]).needs_body
    assert make_config(url=URL, conditions=["len([BODY]) > 0"]).needs_body
    assert make_config(url=URL, keyword_absent="error").needs_body


def test_configs_with_the_same_ca_share_one_tls_context(ca_pem: str) -> None:
    first, second = make_config(url=URL, ca=ca_pem), make_config(url=URL, ca=ca_pem)
    assert isinstance(first.tls, ssl.SSLContext) and first.tls is second.tls
    assert make_config(url=URL, ca=ca_pem, verify_tls=False).tls is False
