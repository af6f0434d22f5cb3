from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import (
    CallbackReply,
    ChannelContext,
    InboundMessage,
    OptOut,
    Receipt,
)
from dozor.notify.channels.telegram import TelegramChannel, TelegramConfig
from dozor.outbound import Outbound
from tests.notify.channels.chat_support import (
    SHORT_TIMEOUT,
    CallbackEndpoint,
    Fails,
    attempt,
    callback_request,
    channel_context,
    check,
    make_message,
    point,
    refused_url,
)
from tests.servers.chat_webhooks import Reply
from tests.servers.telegram import (
    TelegramBotApi,
    group_message,
    member_update,
    private_message,
    telegram_error,
    telegram_flood,
    visible_text,
)

CHAT = 424242
SECRET = "hook-Secret_42"
AT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.fixture
async def api() -> AsyncIterator[TelegramBotApi]:
    async with TelegramBotApi() as server:
        server.add_chat(CHAT)
        yield server


@pytest.fixture
async def context() -> AsyncIterator[ChannelContext]:
    async with channel_context() as made:
        yield made


def make_channel(api: TelegramBotApi, context: ChannelContext, **fields: object,
                 ) -> TelegramChannel:
    config = TelegramConfig.model_validate({
        "bot-token": api.token, "bot-username": "dozor_alerts_bot", "api-base": api.url(),
        **fields})
    return TelegramChannel(config, context)


async def test_a_message_goes_to_the_chat_in_html_with_the_subject_in_bold(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    receipt = await make_channel(api, context).send(make_message(), point("telegram", str(CHAT)))
    assert receipt == Receipt(provider_id="1", delivered=True)
    [call] = api.requests
    assert call.path == f"/bot{api.token}/sendMessage"
    assert call.headers["Content-Type"] == "application/json"
    assert call.json() == {
        "chat_id": CHAT, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True},
        "text": "<b>api.example.com is down</b>\n"
                "HTTP 503 from https://api.example.com/health (2 of 3 locations)\n"
                "https://status.example.com/monitors/7",
    }


async def test_html_characters_are_escaped_so_telegram_shows_them_as_written(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    message = make_message(subject="<b>db</b> & co", text="latency > 5 s && <p99>",
                           link="https://x.example/?a=1&b=2")
    await make_channel(api, context).send(message, point("telegram", str(CHAT)))
    assert visible_text(api.sent[0]["text"]) == (
        "<b>db</b> & co\nlatency > 5 s && <p99>\nhttps://x.example/?a=1&b=2")


async def test_a_long_text_is_cut_to_fit_one_message(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    message = make_message(text="€ < " * 2000)  # 8000 characters, many escaped
    await make_channel(api, context).send(message, point("telegram", str(CHAT)))
    shown = visible_text(api.sent[0]["text"])
    assert 4090 <= len(shown) <= 4096
    assert shown.endswith("…\nhttps://status.example.com/monitors/7")


async def test_a_message_without_a_subject_or_link_is_just_its_text(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    message = make_message(subject="", link=None, text="Your code is 123456")
    await make_channel(api, context).send(message, point("telegram", str(CHAT)))
    assert api.sent[0]["text"] == "Your code is 123456"


@pytest.mark.parametrize(("chat_state", "reply", "expected"), [
    pytest.param("active", None, Receipt("1", delivered=True), id="sent"),
    pytest.param("blocked", None, Fails(True, "blocked", reason="bot was blocked by the user"),
                 id="blocked"),
    pytest.param("deactivated", None, Fails(True, "blocked", reason="user is deactivated"),
                 id="deactivated"),
    pytest.param("kicked", None, Fails(True, "blocked", reason="kicked"), id="kicked"),
    pytest.param(None, None, Fails(True, "chat_not_found", reason="chat not found"),
                 id="unknown-chat"),
    pytest.param("migrated", None, Fails(True, "migrated", reason="-1001234567890"),
                 id="group-migrated"),
    pytest.param("active", telegram_error(403, "Forbidden: bot can't initiate conversation "
                                               "with a user"),
                 Fails(True, "forbidden"), id="never-started"),
    pytest.param("active", telegram_error(400, "Bad Request: have no rights to send a "
                                               "message"),
                 Fails(True, "400", reason="no rights"), id="no-rights"),
    pytest.param("active", telegram_error(400, "Bad Request: can't parse entities: x"),
                 Fails(True, "bad_request", channel_fault=True), id="our-bad-html"),
    pytest.param("active", telegram_flood(7), Fails(False, "flood", 7.0, reason="retry after 7"),
                 id="flood-429"),
    pytest.param("active", telegram_error(500, "Internal Server Error"), Fails(False, "500"),
                 id="500"),
    pytest.param("active", Reply(502, "<html>502 Bad Gateway</html>",
                                 content_type="text/html", headers={"Retry-After": "20"}),
                 Fails(False, None, 20.0, reason="HTTP 502"), id="502-html"),
    pytest.param("active", Reply(200, "ok, probably"), Fails(False, reason="without its JSON"),
                 id="200-garbage"),
    pytest.param("active", Reply(200, json=["ok"]), Fails(False), id="200-not-an-object"),
    pytest.param("active", Reply(404, "<html>nginx</html>", content_type="text/html"),
                 Fails(True, channel_fault=True), id="no-telegram-at-api-base"),
    pytest.param("active", Reply(delay=5), Fails(False, reason="no answer within 0.3 s"),
                 id="never-answers"),
])
async def test_telegram_answers_become_receipts_or_errors(
    api: TelegramBotApi, chat_state: str | None, reply: Reply | None,
    expected: Receipt | Fails,
) -> None:
    if chat_state is not None:
        api.add_chat(CHAT, chat_state)
    else:
        api.chats.clear()
    if reply is not None:
        api.script(reply)
    async with channel_context(send_timeout=SHORT_TIMEOUT) as context:
        outcome = await attempt(make_channel(api, context), make_message(),
                                point("telegram", str(CHAT)))
    check(outcome, expected)


@pytest.mark.parametrize(("token", "expected"), [
    ("987654321:AAE-someone_elses-token", Fails(True, "unauthorized", channel_fault=True,
                                                reason="Unauthorized")),
    ("not-a-token", Fails(True, "unauthorized", channel_fault=True, reason="Not Found")),
])
async def test_a_wrong_bot_token_is_the_channels_fault(
    api: TelegramBotApi, context: ChannelContext, token: str, expected: Fails,
) -> None:
    channel = make_channel(api, context, **{"bot-token": token})
    outcome = await attempt(channel, make_message(), point("telegram", str(CHAT)))
    check(outcome, expected)
    assert token not in str(outcome)


async def test_telegram_out_of_reach_is_a_transient_error(context: ChannelContext) -> None:
    config = TelegramConfig(bot_token="1:x", bot_username="dozor_bot", api_base=refused_url())
    outcome = await attempt(TelegramChannel(config, context), make_message(),
                            point("telegram", "5"))
    check(outcome, Fails(False, reason="connection refused"))


async def test_a_channel_name_is_sent_as_it_is(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    api.add_chat("@dozor_status")
    await make_channel(api, context).send(make_message(), point("telegram", "@dozor_status"))
    assert api.sent[0]["chat_id"] == "@dozor_status"


# --- config and deep links -----------------------------------------------------------

def test_the_deep_link_opens_the_bot_with_the_start_token() -> None:
    config = TelegramConfig(bot_token="1:x", bot_username="@Dozor_Alerts_bot")
    channel = TelegramChannel(config, ChannelContext(outbound=Outbound("t")))
    assert channel.deep_link("Zm9v-bar_1") == "https://t.me/Dozor_Alerts_bot?start=Zm9v-bar_1"
    with pytest.raises(ValueError, match="1-64 characters"):
        channel.deep_link("no spaces allowed")
    with pytest.raises(ValueError, match="1-64 characters"):
        channel.deep_link("x" * 65)


@pytest.mark.parametrize(("fields", "field"), [
    ({"bot-username": "no spaces"}, "bot-username"),
    ({"webhook-secret": "not/allowed"}, "webhook-secret"),
    ({"api-base": "api.telegram.org"}, "api-base"),
    ({"bot-tokens": "typo"}, "bot-tokens"),
])
def test_a_bad_config_names_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TelegramConfig.model_validate({"bot-token": "1:x", "bot-username": "dozor_bot",
                                       **fields})


def test_secrets_do_not_show_in_the_config() -> None:
    config = TelegramConfig(bot_token="123:very-secret", bot_username="dozor_bot",
                            webhook_secret="hook-secret")
    assert "very-secret" not in repr(config) and "hook-secret" not in repr(config)
    assert config.api_base == "https://api.telegram.org"


async def test_the_kind_is_registered_for_telegram_points(context: ChannelContext) -> None:
    assert "telegram" in kinds_for_point("telegram")
    channel = build_channel("telegram", {"bot-token": "1:x", "bot-username": "dozor_bot"},
                            context)
    assert isinstance(channel, TelegramChannel)


# --- the webhook: registration and updates --------------------------------------------

async def test_start_registers_the_webhook_and_updates_come_back_as_events(
    api: TelegramBotApi,
) -> None:
    channel: TelegramChannel
    async with CallbackEndpoint(lambda request: channel.handle_callback(request)) as dozor, \
            channel_context(callback_url=dozor.url("/callbacks/telegram")) as context:
        channel = make_channel(api, context, **{"webhook-secret": SECRET})
        await channel.start()
        assert api.calls("setWebhook")[0].json() == {
            "url": dozor.url("/callbacks/telegram"), "secret_token": SECRET,
            "allowed_updates": ["message", "my_chat_member"]}
        assert await api.deliver(private_message(CHAT, "/start c0nfirm-42")) == 200
        assert await api.deliver(member_update(CHAT, "kicked")) == 200
    assert [reply.events for reply in dozor.replies] == [
        [InboundMessage("telegram", str(CHAT), "/start c0nfirm-42", AT)],
        [OptOut("telegram", str(CHAT), AT, "blocked the bot")],
    ]


async def test_start_without_a_callback_url_registers_nothing(
    api: TelegramBotApi, context: ChannelContext,
) -> None:
    await make_channel(api, context).start()
    assert api.requests == []


async def test_a_failed_registration_is_logged_and_sending_still_works(
    api: TelegramBotApi, caplog: pytest.LogCaptureFixture,
) -> None:
    api.script(telegram_error(400, "Bad Request: bad webhook: An HTTPS URL must be provided "
                                   "for webhook"))
    async with channel_context(callback_url="http://dozor.example.com/cb") as context:
        channel = make_channel(api, context)
        with caplog.at_level(logging.WARNING):
            await channel.start()
        assert "HTTPS URL must be provided" in caplog.text
        assert await channel.send(make_message(), point("telegram", str(CHAT)))


def _update(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(("headers", "body", "method", "status", "events"), [
    pytest.param({}, _update(private_message(CHAT, "/stop")), "POST", 403, [],
                 id="no-secret"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": "guess"},
                 _update(private_message(CHAT, "/stop")), "POST", 403, [], id="wrong-secret"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET}, b"{not json", "POST", 400, [],
                 id="not-json"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET}, b"[1, 2]", "POST", 400, [],
                 id="not-an-object"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET}, b"{}", "GET", 405, [],
                 id="get"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update(private_message(CHAT, "/stop")), "POST", 200,
                 [InboundMessage("telegram", str(CHAT), "/stop", AT)], id="stop"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update(group_message(-100777, "/stop")), "POST", 200, [],
                 id="group-chatter"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update({"update_id": 1, "message": {"chat": {"id": CHAT, "type": "private"},
                                                      "sticker": {}}}),
                 "POST", 200, [], id="sticker"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update({"update_id": 1, "edited_message": {}}), "POST", 200, [],
                 id="edited-message"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update(member_update(CHAT, "member")), "POST", 200, [], id="unblocked"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update(member_update(-100777, "left", "supergroup")), "POST", 200,
                 [OptOut("telegram", "-100777", AT, "removed the bot from the chat")],
                 id="removed-from-group"),
    pytest.param({"X-Telegram-Bot-Api-Secret-Token": SECRET},
                 _update({"update_id": 1, "message": "garbage"}), "POST", 200, [],
                 id="odd-shape"),
])
async def test_updates_become_events_only_with_the_right_secret(
    context: ChannelContext, headers: dict[str, str], body: bytes, method: str, status: int,
    events: list[object],
) -> None:
    config = TelegramConfig(bot_token="1:x", bot_username="dozor_bot", webhook_secret=SECRET)
    reply = await TelegramChannel(config, context).handle_callback(
        callback_request(body, headers, method))
    assert (reply.status, list(reply.events)) == (status, events)


async def test_without_a_secret_any_update_is_heard(context: ChannelContext) -> None:
    config = TelegramConfig(bot_token="1:x", bot_username="dozor_bot")
    reply = await TelegramChannel(config, context).handle_callback(
        callback_request(_update(private_message(CHAT, "/start x"))))
    assert reply == CallbackReply(events=[InboundMessage("telegram", str(CHAT), "/start x",
                                                         AT)])
