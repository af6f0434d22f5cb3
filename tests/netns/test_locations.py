"""Confirmation across locations on real separate hosts (issue 7's "done means"): a
target, three probes (ams, fra, waw) and the server, each its own network namespace on
one LAN, running the real ``dozor serve`` and ``dozor probe`` commands.

One story, told in order on one installation (``site``): a probe cut off from the target
is a regional problem and pages nobody; two cut off open one incident and send one
alert, and the paths coming back recover it; the server killed for a minute loses none
of what the probes measured meanwhile, and stores none of it twice.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from typing import Any

from dozor.core.types import ErrorCode, ResultStatus
from tests.netns.site import CONTACT, LOCATIONS, NOWHERE, Site
from tests.notify.test_scenario import eventually

SHOP = 1  # the monitor the site starts with: the target's /health
SETTLE = 60.0  # seconds any state takes to show; far more than it needs


class News:
    """What users are told of a monitor from now on: incidents, messages, mails (so each
    step asserts its own, whichever steps ran before it)."""

    def __init__(self, site: Site, monitor_id: int) -> None:
        self.site, self.monitor_id = site, monitor_id
        self.known = (0, 0, 0)

    async def start(self) -> News:
        self.known = (len(await self.site.incidents(self.monitor_id)),
                      len(await self.site.messages(self.monitor_id)), len(self.site.mails("")))
        return self

    async def incidents(self) -> list[Any]:
        return (await self.site.incidents(self.monitor_id))[self.known[0]:]

    async def messages(self) -> list[Any]:
        return (await self.site.messages(self.monitor_id))[self.known[1]:]

    def mails(self, subject: str = "") -> list[EmailMessage]:
        return [m for m in self.site.mails("")[self.known[2]:]
                if str(m["Subject"]).startswith(subject)]


async def all_up(site: Site, monitor_id: int) -> None:
    """Wait until the monitor is up with no regional note, every location reporting."""
    async def up() -> bool:
        state = await site.state(monitor_id)
        stored = await site.stored(monitor_id)
        return state.state == "up" and state.regional is None and all(
            stored[name] and stored[name][-1].status == ResultStatus.UP for name in LOCATIONS)
    await eventually(up, SETTLE)


async def failures(site: Site, location: str, count: int) -> None:
    """Wait for ``count`` more failed results from ``location`` than stored now."""
    async def failed() -> int:
        return sum(r.status == ResultStatus.DOWN for r in (await site.stored(SHOP))[location])
    goal = await failed() + count

    async def reached() -> bool:
        return await failed() >= goal
    await eventually(reached, SETTLE)


async def test_a_probe_cut_off_from_the_target_is_a_regional_problem_that_pages_nobody(
        site: Site) -> None:
    await all_up(site, SHOP)
    news = await News(site, SHOP).start()
    site.lan.cut(site.hosts["ams"], site.hosts["target"])

    async def regional() -> object:
        return (await site.state(SHOP)).regional
    assert await eventually(regional, SETTLE) == ["ams"]
    await failures(site, "ams", 3)  # ams keeps failing, and it stays a note

    state = await site.state(SHOP)
    assert (state.state, state.regional, state.incident_id) == ("up", ["ams"], None)
    assert await news.incidents() == []
    assert await news.messages() == []
    assert news.mails() == []
    stored = await site.stored(SHOP)
    assert stored["ams"][-1].status == ResultStatus.DOWN
    assert {r.status for r in stored["fra"][-3:] + stored["waw"][-3:]} == {ResultStatus.UP}

    site.lan.restore(site.hosts["ams"])
    await all_up(site, SHOP)  # the note goes once ams sees the target again
    assert await news.incidents() == []
    assert news.mails() == []


async def test_two_probes_cut_off_open_one_incident_with_one_alert_until_they_see_it_again(
        site: Site) -> None:
    await all_up(site, SHOP)
    news = await News(site, SHOP).start()
    # Two ways a path fails: ams's route refuses (a check fails at once), fra's packets
    # are lost on the way (a check times out).
    site.lan.cut(site.hosts["ams"], site.hosts["target"])
    site.lan.lose(site.hosts["fra"], site.hosts["target"], NOWHERE)

    [alert] = await eventually(lambda: news.mails("DOWN: shop"), SETTLE)
    assert alert["To"] == CONTACT and "Monitor shop is down" in alert.get_body().get_content()
    await failures(site, "fra", 3)  # still failing: no second incident, no second alert

    [incident] = await news.incidents()
    assert incident.closed_at is None
    state = await site.state(SHOP)
    # A confirmed outage, not a regional problem.
    assert (state.state, state.regional, state.incident_id) == ("down", None, incident.id)
    assert [(m.event, m.incident_id) for m in await news.messages()] == [
        ("down", incident.id)]
    assert len(news.mails()) == 1
    stored = await site.stored(SHOP)
    assert stored["ams"][-1].error != ErrorCode.TIMEOUT
    assert stored["fra"][-1].error == ErrorCode.TIMEOUT
    assert stored["waw"][-1].status == ResultStatus.UP

    site.lan.restore(site.hosts["ams"])
    site.lan.restore(site.hosts["fra"])
    [recovery] = await eventually(lambda: news.mails("UP: shop"), SETTLE)
    assert recovery["To"] == CONTACT
    await all_up(site, SHOP)
    [incident] = await news.incidents()
    assert incident.closed_at is not None
    assert [m.event for m in await news.messages()] == ["down", "up"]
    assert [str(m["Subject"]).split(":")[0] for m in news.mails()] == ["DOWN", "UP"]


async def test_the_server_away_for_a_minute_loses_no_probe_result_and_stores_none_twice(
        site: Site) -> None:
    ledger = await site.add_monitor("ledger", "/ledger")  # checked only from here on
    shop = await News(site, SHOP).start()

    async def reporting() -> bool:
        return all(len(results) >= 3 for results in (await site.stored(ledger)).values())
    await eventually(reporting, SETTLE)

    assert site.server is not None
    site.server.kill()
    killed = time.time()
    await asyncio.sleep(60)  # the probes go on checking, and keep what they measure
    site.start_server()
    seen = site.hits("/ledger")

    async def delivered() -> bool:
        # Each probe tries again after a backoff of up to a minute, so give it that.
        stored = await site.stored(ledger)
        return all(len(stored[name]) >= seen[name] for name in LOCATIONS)
    await eventually(delivered, 90)
    for name, probe in site.probes.items():  # a clean stop delivers what it still holds
        assert probe.stop(grace=20) == 0, f"probe {name}:\n{probe.tail()}"

    seen, stored = site.hits("/ledger"), await site.stored(ledger)
    for name in LOCATIONS:
        assert len(stored[name]) == seen[name], name  # none lost, none twice
        away = [r for r in stored[name] if killed * 1000 < r.at < (killed + 59) * 1000]
        assert len(away) >= 50, name  # measured while the server was away
    # The server's absence pages nobody.
    assert await site.incidents(ledger) == [] and await shop.incidents() == []
    assert shop.mails() == []
