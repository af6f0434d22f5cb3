"""Who read personal data: reading contacts, points, the delivery log or the members, over
the API or in the dashboard, is in the audit log once an hour per person and kind."""

from __future__ import annotations

import httpx
import pytest

from dozor.api import personal_reads
from tests.api.conftest import Person, audit_actions
from tests.web.conftest import Browser, browse, owner_browser

__all__ = ["browse", "owner_browser"]


@pytest.fixture(autouse=True)
def fresh_read_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(personal_reads, "READS", personal_reads.ReadLog())


async def reads(database_url: str, org_id: int) -> list[tuple[object, ...]]:
    return [row[1:] for row in await audit_actions(database_url, org_id)
            if row[0] == "personal_data_read"]


async def test_api_reads_are_recorded_once_an_hour_per_person_and_kind(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    for _ in range(3):
        assert (await client.get("/api/v1/contacts", headers=owner.headers)).status_code == 200
    assert (await client.get("/api/v1/messages", headers=viewer.headers)).status_code == 200
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).status_code == 200
    assert await reads(database_url, owner.org_id) == [(1, "contacts"), (3, "delivery log")]


async def test_dashboard_reads_are_recorded_too(owner_browser: Browser, owner: Person,
                                                database_url: str) -> None:
    assert (await owner_browser.get("/team")).status_code == 200
    assert (await owner_browser.get("/messages")).status_code == 200
    assert (await owner_browser.get("/team")).status_code == 200
    assert await reads(database_url, owner.org_id) == [(1, "members"), (1, "delivery log")]
