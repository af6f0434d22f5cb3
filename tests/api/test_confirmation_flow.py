"""The confirmation of contact points end to end, over the API of a running server (under
uvicorn, with its notify service) and a real SMTP server: the code is read from the email
that arrived, as its holder would; another address is confirmed by the link in its mail."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.api.ratelimit import RateLimit
from dozor.app import create_app
from dozor.settings import Settings
from tests.api.conftest import Person, sign_up
from tests.notify.conftest import add_email_channel
from tests.notify.test_scenario import eventually, mails
from tests.servers.smsfake import unused_port
from tests.servers.smtp import SmtpServer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as server:
        yield server


@pytest.fixture
async def api(database_url: str, tmp_path: Path, engine: AsyncEngine, smtp: SmtpServer,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a running Dozor that sends email through ``smtp``."""
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_IP", RateLimit("login_by_ip", 30, 300.0))
    await add_email_channel(engine, smtp.port)
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings.model_validate({"data_dir": tmp_path, "database_url": database_url,
                                        "public_url": base, "signup": True})
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started))
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield client
    server.should_exit = True
    await task


async def new_point(api: httpx.AsyncClient, owner: Person, name: str, address: str) -> str:
    contact = (await api.post("/api/v1/contacts", json={"name": name},
                              headers=owner.headers)).json()
    point = await api.post(f"/api/v1/contacts/{contact['id']}/points", headers=owner.headers,
                           json={"kind": "email", "address": address})
    assert point.status_code == 201, point.text
    return f"/api/v1/points/{point.json()['id']}"


async def delivered(smtp: SmtpServer, to: str) -> Any:
    [mail] = await eventually(lambda: mails(smtp, to))
    return mail


async def test_a_code_from_the_delivered_email_confirms_the_point(
        api: httpx.AsyncClient, smtp: SmtpServer) -> None:
    owner = await sign_up(api, "owner@example.com", "Olga Owner")
    point = await new_point(api, owner, "Ala", "Ala@Example.com")
    sent = await api.post(f"{point}/verify", headers=owner.headers)
    assert sent.status_code == 202, sent.text
    too_soon = await api.post(f"{point}/verify", headers=owner.headers)
    assert too_soon.status_code == 429 and int(too_soon.headers["retry-after"]) > 0
    mail = await delivered(smtp, "ala@example.com")
    found = re.search(r"code is (\d{6})", mail.get_content())
    assert found is not None, mail.get_content()
    code = found.group(1)
    # The API never shows the code: only the holder has it.
    assert set(sent.json()) == {"point_id", "method", "expires_at", "deep_link"}

    wrong = await api.post(f"{point}/confirm", json={"code": f"{(int(code) + 1) % 10**6:06d}"},
                           headers=owner.headers)
    assert wrong.status_code == 422
    assert (await api.get(point, headers=owner.headers)).json()["status"] == "unconfirmed"
    confirmed = await api.post(f"{point}/confirm", json={"code": code}, headers=owner.headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    [grant] = (await api.get(f"{point}/consents", headers=owner.headers)).json()["items"]
    assert (grant["action"], grant["method"], grant["source"]) == ("granted", "code",
                                                                   "127.0.0.1")
    assert len(mails(smtp, "ala@example.com")) == 1  # the refused second code never went


async def test_the_link_in_the_delivered_email_confirms_the_point(
        api: httpx.AsyncClient, smtp: SmtpServer) -> None:
    owner = await sign_up(api, "owner@example.com", "Olga Owner")
    point = await new_point(api, owner, "Bob", "bob@example.com")
    assert (await api.post(f"{point}/verify", headers=owner.headers)).status_code == 202
    mail = await delivered(smtp, "bob@example.com")
    link = re.search(r"http://\S+/confirm/\S+", mail.get_content())
    assert link is not None
    assert "Yes, send me alerts" in (await api.get(link.group())).text  # a GET changes nothing
    assert (await api.get(point, headers=owner.headers)).json()["status"] == "unconfirmed"
    assert "Confirmed" in (await api.post(link.group())).text
    assert (await api.get(point, headers=owner.headers)).json()["status"] == "confirmed"
    ledger = (await api.get(f"{point}/consents", headers=owner.headers)).json()["items"]
    assert [(c["action"], c["method"]) for c in ledger] == [("granted", "link")]
