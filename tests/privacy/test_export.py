"""Export: the archive holds every table's rows for the organisation, nothing of another
one, and no secret; every table in the schema is exported or left out for a reason."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from dozor.privacy import export, keys
from dozor.store import incident_tables as i
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import status_tables as st
from dozor.store import tables as t
from tests.api import seed
from tests.api.conftest import Person, audit_actions

SECRETISH = re.compile(r"hash|secret|^token$|password")


def test_every_table_is_exported_or_left_out_for_a_reason() -> None:
    tables = set(t.metadata.tables)
    assert not set(export.SCOPES) & set(export.NOT_EXPORTED)
    unknown = tables - set(export.SCOPES) - set(export.NOT_EXPORTED)
    assert not unknown, f"say how to export these (privacy/export.py SCOPES): {unknown}"
    assert not (set(export.SCOPES) | set(export.NOT_EXPORTED)) - tables


def test_every_secret_looking_column_is_redacted() -> None:
    for name in export.SCOPES:
        for column in t.metadata.tables[name].columns:
            if SECRETISH.search(column.name):
                assert column.name in export.REDACTED.get(name, set()), (name, column.name)


async def populate(client: httpx.AsyncClient, person: Person, database_url: str,
                   word: str) -> None:
    """Something in every table an organisation fills, each text carrying ``word``."""
    monitor = (await client.post("/api/v1/monitors", headers=person.headers, json={
        "name": f"{word} shop", "kind": "tcp", "host": "127.0.0.1", "port": 9})).json()
    contact = (await client.post("/api/v1/contacts", headers=person.headers,
                                 json={"name": f"{word} on-call"})).json()
    point = (await client.post(f"/api/v1/contacts/{contact['id']}/points",
                               headers=person.headers, json={
                                   "kind": "webhook",
                                   "address": f"https://{word}.example/hook",
                                   "secret": f"{word}-webhook-secret"})).json()
    await client.post(f"/api/v1/points/{point['id']}/verify", headers=person.headers)
    await client.post("/api/v1/policies", headers=person.headers, json={
        "name": f"{word} alerts", "contact_ids": [contact["id"]], "all_monitors": True})
    await client.post("/api/v1/maintenance", headers=person.headers, json={
        "name": f"{word} nightly", "cron": "0 3 * * *", "duration": "1h",
        "all-monitors": True})
    page = (await client.post("/api/v1/status-pages", headers=person.headers, json={
        "slug": f"{word}-status", "title": word, "groups": [
            {"name": word, "monitors": [{"monitor_id": monitor["id"]}]}]})).json()
    await client.post(f"/api/v1/status-pages/{page['id']}/notes", headers=person.headers,
                      json={"status": "info", "text": f"{word} news"})
    async with seed.database(database_url) as db:
        incident_id = await seed.incident(db, person.org_id, monitor["id"],
                                          cause=f"{word} down")
        message_id = await seed.message(db, person.org_id, contact_id=contact["id"],
                                        point_id=point["id"], incident_id=incident_id)
        at = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())
        await keys.ensure(db, person.org_id)
        await db.execute(insert(n.consents).values(
            org_id=person.org_id, point_id=point["id"], kind="webhook",
            address=keys.Personal(person.org_id, f"https://{word}.example/hook"),
            action="granted", method="code", at=datetime.now(UTC),
            source=keys.Personal(person.org_id, "203.0.113.7"), text_shown=f"{word} consent"))
        await db.execute(insert(n.message_events).values(
            message_id=message_id, at=datetime.now(UTC), kind="attempt", detail=word))
        await db.execute(insert(t.results).values(
            monitor_id=monitor["id"], at=at * 1000, location_id=1, status=1, latency_ms=5))
        for table, bucket in ((t.rollups_hourly, at), (t.rollups_daily, at)):
            await db.execute(insert(table).values(
                monitor_id=monitor["id"], location_id=1, bucket=bucket, checks=1, up=1,
                timed=1, latency_sum=5.0, histogram=""))
        await db.execute(insert(st.status_subscribers).values(
            page_id=page["id"], language="en",
            **await seed.subscriber_email(db, person.org_id, f"{word}.visitor@example.com"),
            confirm_hash=f"{word}-confirm-hash", requested_at=datetime.now(UTC),
            unsubscribe_token=f"{word}-unsubscribe-token", created_at=datetime.now(UTC)))
        await db.execute(insert(i.incident_acknowledgements).values(
            incident_id=incident_id, org_id=person.org_id, user_id=1, at=datetime.now(UTC)))
        breach_id = (await db.execute(insert(pv.breaches).values(
            detected_at=datetime.now(UTC), summary="a laptop was lost",
            created_at=datetime.now(UTC)).returning(pv.breaches.c.id))).scalar_one()
        await db.execute(insert(pv.breach_notices).values(
            breach_id=breach_id, org_id=person.org_id, queued_at=datetime.now(UTC),
            messages=0, within_deadline=True))
    former = (await client.post("/api/v1/contacts", headers=person.headers,
                                json={"name": f"{word} former"})).json()
    await client.post(f"/api/v1/contacts/{former['id']}/erasure", headers=person.headers)
    await client.post(f"/api/v1/incidents/{incident_id}/comments", headers=person.headers,
                      json={"body": f"{word} restarting"})


def read_archive(content: bytes) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    bundle = zipfile.ZipFile(io.BytesIO(content))
    manifest = json.loads(bundle.read("manifest.json"))
    files = {name.removesuffix(".jsonl"): [json.loads(line) for line in
                                           bundle.read(name).decode().splitlines()]
             for name in bundle.namelist() if name.endswith(".jsonl")}
    return manifest, files


async def test_the_archive_holds_every_row_of_the_organisation_and_no_secret(
        client: httpx.AsyncClient, owner: Person, stranger: Person,
        database_url: str) -> None:
    await populate(client, owner, database_url, "acme")
    await populate(client, stranger, database_url, "globex")
    answer = await client.get("/api/v1/account/export", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    manifest, files = read_archive(answer.content)
    assert set(files) == set(export.SCOPES)
    async with seed.database(database_url) as db:
        for name, scope in export.SCOPES.items():
            table = t.metadata.tables[name]
            expected = (await db.execute(select(func.count()).select_from(table)
                                         .where(scope(owner.org_id)))).scalar_one()
            assert len(files[name]) == expected == manifest["files"][f"{name}.jsonl"]["rows"]
    empty = {name for name, rows in files.items() if not rows}
    # Filled by the steps above, so each is proven to reach the archive.
    assert not empty - {"recovery_codes", "email_tokens"}, empty
    text = answer.content.decode("latin-1") + json.dumps(files)
    assert "globex" not in text and "acme shop" in text
    assert "acme-webhook-secret" not in text
    for name, columns in export.REDACTED.items():
        assert not any(column in row for row in files[name] for column in columns)
    assert ("export",) in [row[:1] for row in await audit_actions(database_url,
                                                                  owner.org_id)]


async def test_only_owners_and_admins_export(client: httpx.AsyncClient, owner: Person,
                                            viewer: Person) -> None:
    answer = await client.get("/api/v1/account/export", headers=viewer.headers)
    assert answer.status_code == 403


async def test_the_archive_streams_in_pieces_of_a_batch(
        client: httpx.AsyncClient, owner: Person, database_url: str,
        monkeypatch: Any) -> None:
    await populate(client, owner, database_url, "acme")
    monkeypatch.setattr(export, "BATCH", 1)
    async with seed.database(database_url) as db:
        pieces = [piece async for piece in export.archive(db, owner.org_id)]
        rows = sum([(await db.execute(select(func.count()).select_from(
            t.metadata.tables[name]).where(scope(owner.org_id)))).scalar_one()
            for name, scope in export.SCOPES.items()])
    assert len(pieces) >= rows  # a piece after every row: never the whole archive at once
    manifest, files = read_archive(b"".join(pieces))
    assert sum(len(r) for r in files.values()) == rows


async def test_a_contacts_archive_holds_only_what_is_about_them(
        client: httpx.AsyncClient, owner: Person, stranger: Person,
        database_url: str) -> None:
    await populate(client, owner, database_url, "acme")
    other = (await client.post("/api/v1/contacts", headers=owner.headers,
                               json={"name": "someone else"})).json()
    contacts = (await client.get("/api/v1/contacts", headers=owner.headers)).json()["items"]
    [on_call] = [c for c in contacts if c["name"] == "acme on-call"]
    answer = await client.get(f"/api/v1/contacts/{on_call['id']}/export",
                              headers=owner.headers)
    assert answer.status_code == 200, answer.text
    manifest, files = read_archive(answer.content)
    assert manifest["contact_id"] == on_call["id"]
    assert set(files) == set(export.CONTACT_SCOPES)
    assert [c["name"] for c in files["contacts"]] == ["acme on-call"]
    for name in ("contact_points", "consents", "verifications", "messages",
                 "message_events"):
        assert files[name], name  # each filled by populate(), each reaches the archive
    assert all(p["contact_id"] == on_call["id"] for p in files["contact_points"])
    assert "someone else" not in answer.content.decode("latin-1") + json.dumps(files)
    assert "acme-webhook-secret" not in json.dumps(files)
    missing = other["id"] + 1000
    assert (await client.get(f"/api/v1/contacts/{missing}/export",
                             headers=owner.headers)).status_code == 404
    assert (await client.get(f"/api/v1/contacts/{on_call['id']}/export",
                             headers=stranger.headers)).status_code == 404
