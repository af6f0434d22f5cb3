"""What providers tell us: delivery receipts, texts people send back, opt-outs.

Receipts update the delivery log; a STOP-style text or a bot's /stop opts the sender out;
``/start TOKEN`` from Telegram confirms the point that deep link was made for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.notify import consent, outbox, settle
from dozor.notify.channels.base import ChannelEvent, DeliveryReport, InboundMessage, OptOut
from dozor.notify.guard import PointView
from dozor.notify.outbox import CLAIMED_COLUMNS, Claimed
from dozor.store import notify_tables as n

log = logging.getLogger(__name__)
RECEIPT_STATUS = {"delivered": "delivered", "failed": "failed"}


async def apply_events(database: AsyncEngine, events: Sequence[ChannelEvent],
                       now: datetime) -> None:
    """Apply events in one transaction (they come in small groups per callback)."""
    if not events:
        return
    async with database.begin() as connection:
        for event in events:
            await apply_event(connection, event, now)


async def apply_event(connection: AsyncConnection, event: ChannelEvent, now: datetime) -> None:
    if isinstance(event, DeliveryReport):
        await _receipt(connection, event)
    elif isinstance(event, OptOut):
        await consent.opt_out(connection, event.point_kind, event.address, "provider", now,
                              detail=event.detail)
    elif isinstance(event, InboundMessage):
        await _inbound(connection, event, now)


async def _receipt(connection: AsyncConnection, report: DeliveryReport) -> None:
    m = n.messages.c
    matching = (m.provider_id == report.provider_id,
                m.status.in_(("sending", "accepted", "delivered")))
    values = _receipt_values(report)
    statement = (update(n.messages).where(*matching).values(**values).returning(m.id)
                 if values else select(m.id).where(*matching))
    ids = list((await connection.execute(statement)).scalars())
    if not ids:
        log.info("receipt for unknown provider id %s", report.provider_id)
        return
    if values.get("status") == "failed":  # undeliverable there: try the next point
        await _fail_over(connection, ids, report.at)
    await outbox.add_events(connection, [
        {"message_id": i, "at": report.at, "kind": "receipt",
         "detail": f"{report.status}" + (f": {report.detail}" if report.detail else "")}
        for i in ids])


def _receipt_values(report: DeliveryReport) -> dict[str, object]:
    status = RECEIPT_STATUS.get(report.status)
    if status is None:  # an intermediate state ("accepted" by the network): log only
        return {}
    values: dict[str, object] = {"status": status, "finished_at": report.at}
    if status == "failed":
        values["last_error"] = report.detail or "the provider reported it undelivered"
    return values


async def _inbound(connection: AsyncConnection, message: InboundMessage, now: datetime) -> None:
    text = message.text.strip()
    if consent.is_stop(text):
        count = await consent.opt_out(connection, message.point_kind, message.address,
                                      "keyword", now, source=message.address, detail=text)
        log.info("opt-out by keyword from a %s point: %d points", message.point_kind, count)
    elif text.startswith("/start ") and message.point_kind == "telegram":
        token = text.removeprefix("/start ").strip()
        try:
            await consent.confirm_token(connection, token, now, source=message.address,
                                        address=message.address)
        except consent.ConsentError as error:
            log.info("telegram deep link not confirmed: %s", error)


async def _fail_over(connection: AsyncConnection, ids: Sequence[int], now: datetime) -> None:
    m = n.messages.c
    rows = (await connection.execute(select(*CLAIMED_COLUMNS).where(m.id.in_(ids)))).all()
    for row in rows:
        message = Claimed(**row._mapping)
        point = PointView(message.point_id or 0, message.org_id, message.contact_id or 0, "",
                          "", None, None, None, "") if message.point_id else None
        await settle.fail_over(connection, message, point, now)
