from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import ChannelContext, Receipt
from dozor.notify.channels.teams import TeamsChannel, TeamsConfig
from tests.notify.channels.chat_support import (
    SHORT_TIMEOUT,
    Fails,
    attempt,
    channel_context,
    check,
    make_message,
    point,
    refused_url,
)
from tests.servers.chat_webhooks import Reply, TeamsWebhooks, teams_connector_error

STARTED = Receipt(None, delivered=False, tracked=False)  # a workflow took it; no news after


@pytest.fixture
async def teams() -> AsyncIterator[TeamsWebhooks]:
    async with TeamsWebhooks() as server:
        yield server


@pytest.fixture
async def context() -> AsyncIterator[ChannelContext]:
    async with channel_context() as made:
        yield made


async def test_a_message_is_posted_to_a_workflow_as_an_adaptive_card(
    teams: TeamsWebhooks, context: ChannelContext,
) -> None:
    url = teams.add_workflow()
    receipt = await TeamsChannel(TeamsConfig(), context).send(make_message(), point("teams", url))
    assert receipt == STARTED
    [request] = teams.requests
    assert request.path == url.removeprefix(teams.url(""))
    assert request.json() == {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": {
            "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "text": "api.example.com is down", "weight": "Bolder",
                 "size": "Medium", "wrap": True, "color": "Attention"},
                {"type": "TextBlock", "wrap": True,
                 "text": "HTTP 503 from https://api.example.com/health (2 of 3 locations)"},
            ],
            "actions": [{"type": "Action.OpenUrl",
                         "title": "https://status.example.com/monitors/7",
                         "url": "https://status.example.com/monitors/7"}],
        },
    }]}


async def test_a_legacy_connector_posts_at_once(
    teams: TeamsWebhooks, context: ChannelContext,
) -> None:
    message = make_message(event="notice", link=None, text="")
    receipt = await TeamsChannel(TeamsConfig(), context).send(
        message, point("teams", teams.add_connector()))
    assert receipt == Receipt(None, delivered=True)
    card = teams.posted[0]["attachments"][0]["content"]
    assert "actions" not in card and len(card["body"]) == 1
    assert card["body"][0]["color"] == "Default"


@pytest.mark.parametrize(("fault", "reply", "expected"), [
    pytest.param(None, None, STARTED, id="started"),
    pytest.param("deleted", None, Fails(True, "WorkflowNotFound", reason="HTTP 404"),
                 id="flow-deleted"),
    pytest.param("wrong-sig", None,
                 Fails(True, "DirectApiInvalidAuthorizationSignature", reason="HTTP 401"),
                 id="wrong-sig"),
    pytest.param(None, Reply(400, json={"error": {"code": "TriggerInputSchemaMismatch",
                                                  "message": "did not match"}}),
                 Fails(True, "TriggerInputSchemaMismatch", reason="did not match"),
                 id="schema-mismatch"),
    pytest.param(None, Reply(429, json={"error": {"code": "WorkflowTriggeredTooFrequently",
                                                  "message": "too often"}},
                             headers={"Retry-After": "10"}),
                 Fails(False, "WorkflowTriggeredTooFrequently", 10.0), id="throttled"),
    pytest.param(None, Reply(413, "too big"), Fails(True, "413", channel_fault=True),
                 id="too-big"),
    pytest.param(None, Reply(500, "<html>oops</html>", content_type="text/html"),
                 Fails(False, "500"), id="500-html"),
    pytest.param(None, Reply(503, json={"error": {"code": "ServiceUnavailable"}},
                             headers={"Retry-After": "120"}),
                 Fails(False, "ServiceUnavailable", 120.0), id="503"),
    pytest.param(None, teams_connector_error(429), Fails(False, "429", reason="HTTP error 429"),
                 id="connector-429-in-a-200"),
    pytest.param(None, teams_connector_error(400), Fails(True, "400"),
                 id="connector-400-in-a-200"),
    pytest.param(None, Reply(200, "1"), Receipt(None, delivered=True), id="connector-ok"),
    pytest.param(None, Reply(delay=5), Fails(False, reason="no answer within"),
                 id="never-answers"),
])
async def test_teams_answers_become_receipts_or_errors(
    teams: TeamsWebhooks, fault: str | None, reply: Reply | None, expected: Receipt | Fails,
) -> None:
    url = teams.add_workflow()
    if fault == "deleted":
        teams.flows.clear()
    if fault == "wrong-sig":
        url = url[: url.rindex("sig=")] + "sig=forged"
    if reply is not None:
        teams.script(reply)
    async with channel_context(send_timeout=SHORT_TIMEOUT) as context:
        outcome = await attempt(TeamsChannel(TeamsConfig(), context), make_message(),
                                point("teams", url))
    check(outcome, expected)


async def test_teams_out_of_reach_is_a_transient_error(context: ChannelContext) -> None:
    outcome = await attempt(TeamsChannel(TeamsConfig(), context), make_message(),
                            point("teams", refused_url("/workflows/x")))
    check(outcome, Fails(False, reason="connection refused"))


async def test_the_kind_is_registered_for_teams_points(context: ChannelContext) -> None:
    assert "teams" in kinds_for_point("teams")
    assert isinstance(build_channel("teams", {}, context), TeamsChannel)
