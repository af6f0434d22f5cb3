"""Contact points over the API: added unconfirmed, confirmed only by the code their holder
got, rate-limited confirmations, statuses, the consent ledger, and who sees addresses.
(The whole flow through a real SMTP server is in test_confirmation_flow.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dozor.notify import consent
from dozor.store.db import create_engine
from tests.api.conftest import Person
from tests.api.recipients import audit_actions, change_point, code_sent, promote


@pytest.fixture
async def ala(client: httpx.AsyncClient, owner: Person) -> dict[str, Any]:
    answer = await client.post("/api/v1/contacts", headers=owner.headers,
                               json={"name": "Ala", "timezone": "Europe/Warsaw"})
    return dict(answer.json())


async def add(client: httpx.AsyncClient, person: Person, contact: dict[str, Any],
              **point: Any) -> httpx.Response:
    return await client.post(f"/api/v1/contacts/{contact['id']}/points", json=point,
                             headers=person.headers)


async def test_a_point_is_added_unconfirmed_with_its_address_normalised(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any]) -> None:
    created = await add(client, owner, ala, kind="sms", address="+48 600 100 200",
                        escalation_minutes=15, priority=1, events=["down", "up"],
                        active_hours={"days": [0, 1, 2, 3, 4], "start": "08:00",
                                      "end": "18:00"}, outside_hours="next")
    assert created.status_code == 201, created.text
    point = created.json()
    assert point["address"] == "+48600100200" and point["status"] == "unconfirmed"
    assert point["active_hours"] == {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}
    assert (point["escalation_minutes"], point["priority"], point["outside_hours"]) == (
        15, 1, "next")
    listed = (await client.get(f"/api/v1/contacts/{ala['id']}/points",
                               headers=owner.headers)).json()
    assert listed == {"items": [point], "next_cursor": None}
    assert (await client.get(created.headers["location"], headers=owner.headers)).json() == point


async def test_bad_points_name_the_field_and_change_nothing(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any]) -> None:
    for point, field in [({"kind": "sms", "address": "12"}, "address"),
                         ({"kind": "email", "address": "not mail"}, "address"),
                         ({"kind": "pager", "address": "1"}, "kind"),
                         ({"kind": "email", "address": "a@example.com",
                           "escalation_minutes": 7}, "escalation_minutes"),
                         ({"kind": "email", "address": "a@example.com",
                           "active_hours": {"days": [9]}}, "active_hours"),
                         ({"kind": "email", "address": "a@example.com",
                           "confirmed_at": "2026-01-01T00:00:00Z"}, "confirmed_at")]:
        answer = await add(client, owner, ala, **point)
        assert answer.status_code == 422, point
        assert [e["field"] for e in answer.json()["errors"]] == [field], answer.json()
    assert (await add(client, owner, {"id": 999}, kind="email",
                      address="a@example.com")).status_code == 404
    await add(client, owner, ala, kind="email", address="ala@example.com")
    again = await add(client, owner, ala, kind="email", address="Ala@Example.com")
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "address"
    listed = (await client.get(f"/api/v1/contacts/{ala['id']}/points",
                               headers=owner.headers)).json()["items"]
    assert [p["address"] for p in listed] == ["ala@example.com"]


async def test_no_write_to_a_point_can_confirm_it(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any],
        database_url: str) -> None:
    point = (await add(client, owner, ala, kind="sms", address="+48600100200")).json()
    url, match = f"/api/v1/points/{point['id']}", owner.headers | {"If-Match": '"1"'}
    for patch in ({"status": "confirmed"}, {"confirmed_at": "2026-01-01T00:00:00Z"},
                  {"opted_out_at": None, "failing_since": None}):
        assert (await client.patch(url, json=patch, headers=match)).status_code == 422
    moved = await client.patch(url, json={"address": "+48600100300"}, headers=match)
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "address"
    assert (await client.post(f"{url}/confirm", json={"code": "123456"},
                              headers=owner.headers)).status_code == 422  # none was sent
    await client.post(f"{url}/verify", headers=owner.headers)
    code = await code_sent(database_url, point["id"])
    wrong = await client.post(f"{url}/confirm", json={"code": other_than(code)},
                              headers=owner.headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "unconfirmed"


async def test_the_code_confirms_a_point_and_the_ledger_records_it(
        client: httpx.AsyncClient, owner: Person, viewer: Person, ala: dict[str, Any],
        database_url: str) -> None:
    point = (await add(client, owner, ala, kind="sms", address="+48600100200")).json()
    url = f"/api/v1/points/{point['id']}"
    sent = await client.post(f"{url}/verify", headers=owner.headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["method"] == "code" and sent.json()["deep_link"] is None
    code = await code_sent(database_url, point["id"])
    confirmed = await client.post(f"{url}/confirm", json={"code": code},
                                  headers=owner.headers | {"User-Agent": "curl/8"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["confirmed_at"]
    [grant] = (await client.get(f"{url}/consents", headers=owner.headers)).json()["items"]
    assert (grant["action"], grant["method"], grant["user_agent"]) == ("granted", "code",
                                                                       "curl/8")
    assert "+48600100200" in grant["text_shown"] and grant["address"] == "+48600100200"
    [seen] = (await client.get(f"{url}/consents", headers=viewer.headers)).json()["items"]
    assert seen["action"] == "granted" and "+48600100200" not in str(seen)
    again = await client.post(f"{url}/verify", headers=owner.headers)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "point"
    assert await audit_actions(database_url, owner.org_id) >= {
        "point_added", "point_verification_sent", "point_confirmed"}


async def test_five_wrong_codes_spend_the_code(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any],
        database_url: str) -> None:
    point = (await add(client, owner, ala, kind="sms", address="+48600100200")).json()
    url = f"/api/v1/points/{point['id']}"
    await client.post(f"{url}/verify", headers=owner.headers)
    code = await code_sent(database_url, point["id"])
    for _ in range(consent.MAX_TRIES):
        answer = await client.post(f"{url}/confirm", json={"code": other_than(code)},
                                   headers=owner.headers)
        assert answer.json()["detail"] == "code: wrong code"
    late = await client.post(f"{url}/confirm", json={"code": code}, headers=owner.headers)
    assert late.status_code == 422 and "no confirmation is waiting" in late.json()["detail"]


async def test_confirmation_messages_are_rate_limited_with_retry_after(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any]) -> None:
    point = (await add(client, owner, ala, kind="email", address="ala@example.com")).json()
    url = f"/api/v1/points/{point['id']}/verify"
    assert (await client.post(url, headers=owner.headers)).status_code == 202
    refused = await client.post(url, headers=owner.headers)
    assert refused.status_code == 429 and "wait a minute" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 60


async def test_a_telegram_point_is_confirmed_through_its_deep_link(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any]) -> None:
    point = (await add(client, owner, ala, kind="telegram")).json()
    assert point["address"] is None and point["status"] == "unconfirmed"
    started = (await client.post(f"/api/v1/points/{point['id']}/verify",
                                 headers=owner.headers)).json()
    assert started["method"] == "deep_link" and started["deep_link"].startswith("/start ")


async def test_only_members_see_addresses_and_only_write_tokens_change_points(
        client: httpx.AsyncClient, owner: Person, viewer: Person, ala: dict[str, Any],
        database_url: str) -> None:
    point = (await add(client, owner, ala, kind="email", address="ala@example.com")).json()
    url = f"/api/v1/points/{point['id']}"
    await change_point(database_url, point["id"], failing_since=datetime.now(UTC),
                       failing_reason="550 <ala@example.com>: no such user")
    seen = await client.get(url, headers=viewer.headers)
    assert seen.status_code == 200 and seen.json()["status"] == "failing"
    assert "ala@example.com" not in seen.text
    listed = await client.get(f"/api/v1/contacts/{ala['id']}/points", headers=viewer.headers)
    assert "ala@example.com" not in listed.text and listed.json()["items"][0]["id"] == point["id"]
    await promote(database_url, viewer, "member")
    member_view = (await client.get(url, headers=viewer.headers)).json()
    assert member_view["address"] == "ala@example.com" and member_view["failing_reason"]
    for method, path, body in (("POST", "/verify", None), ("POST", "/confirm", {"code": "1"}),
                               ("PATCH", "", {"priority": 3}), ("DELETE", "", None)):
        answer = await client.request(method, url + path, json=body,
                                      headers=viewer.headers | {"If-Match": "*"})
        assert answer.status_code == 403, (method, path)


async def test_a_failing_point_is_confirmed_again_and_an_opted_out_one_never(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any],
        database_url: str) -> None:
    failing, gone = [(await add(client, owner, ala, kind="sms", address=number)).json()
                     for number in ("+48600100200", "+48600100300")]
    now = datetime.now(UTC)
    await change_point(database_url, failing["id"], confirmed_at=now, failing_since=now,
                       failing_reason="number unreachable")
    url = f"/api/v1/points/{failing['id']}"
    assert (await client.post(f"{url}/verify", headers=owner.headers)).status_code == 202
    code = await code_sent(database_url, failing["id"])
    again = (await client.post(f"{url}/confirm", json={"code": code},
                               headers=owner.headers)).json()
    assert (again["status"], again["failing_since"]) == ("confirmed", None)

    gone_url = f"/api/v1/points/{gone['id']}"
    await client.post(f"{gone_url}/verify", headers=owner.headers)
    code = await code_sent(database_url, gone["id"])
    engine = create_engine(database_url)
    async with engine.begin() as connection:  # the holder replies STOP to the code
        await consent.opt_out(connection, "sms", "+48600100300", "keyword", now)
    await engine.dispose()
    late = await client.post(f"{gone_url}/confirm", json={"code": code},
                             headers=owner.headers)
    assert late.status_code == 409 and "opted out" in late.json()["detail"]
    assert (await client.post(f"{gone_url}/verify", headers=owner.headers)).status_code == 409
    point = (await client.get(gone_url, headers=owner.headers)).json()
    assert (point["status"], point["confirmed_at"]) == ("opted_out", None)
    ledger = (await client.get(f"{gone_url}/consents", headers=owner.headers)).json()["items"]
    assert [(c["action"], c["method"]) for c in ledger] == [("withdrawn", "keyword")]


async def test_a_point_changes_how_it_is_used_under_its_version(
        client: httpx.AsyncClient, owner: Person, ala: dict[str, Any]) -> None:
    point = (await add(client, owner, ala, kind="webhook", address="https://hooks.test/in",
                       secret="s3cret")).json()
    assert point["secret_set"] is True and "s3cret" not in str(point)
    url = f"/api/v1/points/{point['id']}"
    changed = await client.patch(url, json={"events": ["down"], "priority": 2, "secret": None},
                                 headers=owner.headers | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["events"], body["priority"], body["secret_set"], body["version"]) == (
        ["down"], 2, False, 2)
    assert body["address"] == "https://hooks.test/in" and body["status"] == "unconfirmed"
    stale = await client.patch(url, json={"priority": 5},
                               headers=owner.headers | {"If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
