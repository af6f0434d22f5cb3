"""The Apprise channel against real Apprise plugins: ``json://`` and ``form://`` post to a
local HTTP server, which records what they sent."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from dozor.notify.channels import build_channel
from dozor.notify.channels.apprise import AppriseChannel
from dozor.notify.channels.base import ChannelContext, ContactPoint, DeliveryError, Receipt
from dozor.outbound import Outbound
from tests.notify.channels.chat2_support import MESSAGE, Fails, closed_port
from tests.servers.http import LocalHttpServer


@pytest.fixture
async def server() -> AsyncIterator[LocalHttpServer]:
    async with LocalHttpServer() as local:
        yield local


def channel(timeout: float = 5.0, **config: Any) -> AppriseChannel:
    built = build_channel("apprise", config, ChannelContext(outbound=Outbound("dozor-test"),
                                                            timeout=timeout))
    assert isinstance(built, AppriseChannel)
    return built


def point(address: str) -> ContactPoint:
    return ContactPoint(id=11, kind="apprise", address=address)


def apprise_url(server: LocalHttpServer, scheme: str, path: str) -> str:
    return f"{scheme}://127.0.0.1:{server.port}{path}"


async def test_a_json_url_receives_the_title_and_body_and_the_receipt_is_untracked(
    server: LocalHttpServer,
) -> None:
    server.serve("/hook", body="ok")
    receipt = await channel().send(MESSAGE, point(apprise_url(server, "json", "/hook")))

    assert receipt == Receipt(provider_id=None, tracked=False)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert json.loads(request.body) == {
        "version": "1.0", "title": "Down: shop", "type": "failure", "attachments": [],
        "message": "https://shop.example answered HTTP 503\nhttps://dozor.example/monitors/3",
    }


@pytest.mark.parametrize(("event", "kind"), [("up", "success"), ("digest", "info")])
async def test_a_form_url_receives_the_fields_with_the_events_notification_type(
    server: LocalHttpServer, event: str, kind: str,
) -> None:
    server.serve("/form", body="ok")
    message = replace(MESSAGE, event=event, subject="Up: shop", link=None)
    await channel().send(message, point(apprise_url(server, "form", "/form")))

    fields = parse_qs(server.requests[-1].body.decode())
    assert fields["title"] == ["Up: shop"]
    assert fields["message"] == ["https://shop.example answered HTTP 503"]
    assert fields["type"] == [kind]


@pytest.mark.parametrize(("answer", "fails"), [
    pytest.param({"status": 500, "body": "broken"},
                 Fails(False, code="FAILURE", reason="error=500"), id="HTTP 500"),
    pytest.param({"status": 401, "body": "who are you?"},
                 Fails(False, code="FAILURE", reason="gives no detail"),
                 id="HTTP 401: still no detail Apprise lets us classify"),
    pytest.param({"delay": 3.0}, Fails(False, reason="did not finish within 0.5 s"),
                 id="no answer in time"),
])
async def test_a_failing_service_is_a_transient_error(
    server: LocalHttpServer, answer: dict[str, Any], fails: Fails,
) -> None:
    server.serve("/hook", **answer)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await channel(timeout=0.5).send(MESSAGE, point(apprise_url(server, "json", "/hook")))
    fails.check(caught.value)
    assert time.monotonic() - started < 2.0


async def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel().send(MESSAGE, point(f"json://127.0.0.1:{closed_port()}/hook"))
    Fails(False, code="FAILURE", reason="Connection error").check(caught.value)


@pytest.mark.parametrize("address", ["nosuchservice://token@host", "json://", "mailto://"])
async def test_an_address_no_apprise_service_accepts_is_the_points_permanent_fault(
    address: str,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel().send(MESSAGE, point(address))
    Fails(True, reason="not an Apprise URL").check(caught.value)


async def test_the_config_can_restrict_the_allowed_services(server: LocalHttpServer) -> None:
    server.serve("/hook", body="ok")
    restricted = channel(schemes=["ntfys", "gotify"])
    with pytest.raises(DeliveryError) as caught:
        await restricted.send(MESSAGE, point(apprise_url(server, "json", "/hook")))
    Fails(True, reason="json:// is not allowed on this channel (allowed: gotify, ntfys)").check(
        caught.value)
    assert server.requests == []


async def test_plugins_and_config_from_the_environment_are_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = tmp_path / "sent"
    plugins = tmp_path / ".apprise" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "evil.py").write_text(
        "from apprise.decorators import notify\n\n"
        "@notify(on='evil')\n"
        "def evil(body, title, notify_type, *args, **kwargs):\n"
        f"    open({str(sent)!r}, 'w').write(body)\n")
    (tmp_path / ".apprise.yml").write_text("urls:\n  - evil://anything\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPRISE_PLUGIN_PATH", str(plugins))
    monkeypatch.setenv("APPRISE_CONFIG_PATH", str(tmp_path / ".apprise.yml"))

    with pytest.raises(DeliveryError) as caught:
        await channel().send(MESSAGE, point("evil://anything"))
    assert caught.value.permanent
    assert not sent.exists()
