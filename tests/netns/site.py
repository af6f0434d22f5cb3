"""Dozor set up on separate hosts as an operator would, and what its users see of it.

The hosts (namespaces on one LAN, ``tests/netns/network.py``):

- ``server``: ``dozor serve``. SQLite, in a namespace of its own: the server is then a
  host the probes reach over the LAN like any other, and the test reads the database
  file directly. PostgreSQL listens on the machine's own loopback, which a namespace
  cannot reach unless the root namespace gets an address on the LAN; these tests keep
  every address inside the namespaces they make (two nodes on PostgreSQL are tested
  elsewhere).
- ``mail``: an SMTP server (aiosmtpd's own command) keeping what it gets in a Maildir:
  the mailbox of the contact the alerts go to.
- ``target``: the website checked, ``python -m http.server``, whose log names the
  address of every request, that is, the probe that made it.
- ``ams``, ``fra``, ``waw``: the probes, ``dozor probe``, one per location, with tokens
  from ``dozor probes add``.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dozor.api.probes import TOKEN_PREFIX
from dozor.config.specs import parse_monitor
from dozor.store import monitors as monitor_store
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.seed import database
from tests.netns.network import Host, Lan, Process
from tests.notify.conftest import add_contact

NET = "10.147.0"  # private, and only ever inside the namespaces the tests make
NOWHERE = f"{NET}.254"  # on the LAN, but no host has it
ADDRESSES = {"server": f"{NET}.2", "mail": f"{NET}.3", "target": f"{NET}.10",
             "ams": f"{NET}.21", "fra": f"{NET}.22", "waw": f"{NET}.23"}
LOCATIONS = ("ams", "fra", "waw")
SERVER_PORT, SMTP_PORT, TARGET_PORT = 8000, 2525, 8080
CONTACT = "ops@example.com"
STARTED = "Application startup complete"  # what uvicorn logs once it serves
# One line of http.server's log: who asked for what.
REQUEST = re.compile(r'^(\S+) - - \[[^]]*\] "GET (\S+) HTTP/[\d.]+"', re.MULTILINE)
DOZOR = shutil.which("dozor", path=str(Path(sys.executable).parent)) or "dozor"


def monitor_spec(name: str, path: str) -> dict[str, Any]:
    """An http monitor of the target's ``path``, checked from the three locations every
    second; a location confirms a failure after two checks, and a majority of the
    locations (two of three, ``confirm-locations`` left out) confirms an outage."""
    return {"name": name, "kind": "http", "url": f"http://{ADDRESSES['target']}:"
            f"{TARGET_PORT}{path}", "interval": "1s", "retry-interval": "1s",
            "confirm-after": 2, "locations": list(LOCATIONS)}


@dataclass
class Site:
    lan: Lan
    directory: Path
    secret_key: str
    hosts: dict[str, Host] = field(default_factory=dict)
    server: Process | None = None
    probes: dict[str, Process] = field(default_factory=dict)
    starts: int = 0  # of the server

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.directory / 'server' / 'dozor.db'}"

    @property
    def server_url(self) -> str:
        return f"http://{ADDRESSES['server']}:{SERVER_PORT}"

    def _environment(self, **settings: str) -> dict[str, str]:
        own = {k: v for k, v in os.environ.items() if not k.startswith("DOZOR_")}
        return own | {f"DOZOR_{k.upper()}": v for k, v in settings.items()}

    def _server_environment(self) -> dict[str, str]:
        return self._environment(
            data_dir=str(self.directory / "server"), database_url=self.database_url,
            secret_key=self.secret_key, host=ADDRESSES["server"], port=str(SERVER_PORT),
            public_url=self.server_url, reload_interval="1s", flush_interval="200ms",
            notify_group_wait="1s", notify_retry_base="1s")

    def operator(self, *commands: list[str]) -> list[str]:
        """Run ``dozor`` commands on the server host at once; their outputs."""
        running = [subprocess.Popen(
            ["ip", "netns", "exec", self.hosts["server"].namespace, DOZOR, *argv],
            env=self._server_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for argv in commands]
        outputs = []
        for argv, process in zip(commands, running, strict=True):
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, f"dozor {' '.join(argv)}: {err}"
            outputs.append(out)
        return outputs

    def start_target(self) -> None:
        pages = self.directory / "target"
        pages.mkdir()
        for page in ("health", "ledger"):
            (pages / page).write_text("ok\n")
        self.lan.spawn(self.hosts["target"], [
            sys.executable, "-u", "-m", "http.server", str(TARGET_PORT),
            "--bind", ADDRESSES["target"], "--directory", str(pages)],
            self._environment(), self.directory / "target.log")

    def start_mail(self) -> None:
        mailbox.Maildir(self.directory / "maildir")  # made, so reading never races it
        self.lan.spawn(self.hosts["mail"], [
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{ADDRESSES['mail']}:{SMTP_PORT}",
            "-c", "aiosmtpd.handlers.Mailbox", str(self.directory / "maildir")],
            self._environment(), self.directory / "mail.log")

    def start_server(self) -> None:
        """``dozor serve``, until it serves (each start logs to a file of its own)."""
        self.starts += 1
        self.server = self.lan.spawn(self.hosts["server"], [DOZOR, "serve"],
                                     self._server_environment(),
                                     self.directory / f"server-{self.starts}.log")
        deadline = time.monotonic() + 30
        while STARTED not in self.server.log.read_text(errors="replace"):
            assert self.server.popen.poll() is None, f"dozor serve ended:\n{self.server.tail()}"
            assert time.monotonic() < deadline, f"dozor serve did not start:\n" \
                                                f"{self.server.tail()}"
            time.sleep(0.1)

    def start_probes(self, tokens: dict[str, str]) -> None:
        for location, token in tokens.items():
            self.probes[location] = self.lan.spawn(self.hosts[location], [
                DOZOR, "probe", "--server", self.server_url, "--token", token,
                "--location", location, "--data-dir", str(self.directory / location)],
                # The target's address is a private one, as on any self-hosted LAN.
                self._environment(probe_sync_interval="1s", private_targets="allow"),
                self.directory / f"probe-{location}.log")

    # -- what users see --

    def hits(self, path: str) -> Counter[str]:
        """The requests for ``path`` the target got, by the location that made them."""
        by_address = {address: name for name, address in ADDRESSES.items()}
        log = (self.directory / "target.log").read_text(errors="replace")
        return Counter(by_address.get(who, who) for who, asked in REQUEST.findall(log)
                       if asked == path)

    def mails(self, subject: str) -> list[EmailMessage]:
        """The contact's mails whose subject starts with ``subject``, as delivered."""
        found = []
        box = mailbox.Maildir(self.directory / "maildir", create=False)
        for raw in sorted(box, key=lambda raw: raw.get_date()):
            mail = message_from_bytes(raw.as_bytes(), policy=policy.default)
            assert isinstance(mail, EmailMessage)
            if mail["To"] == CONTACT and str(mail["Subject"]).startswith(subject):
                found.append(mail)
        return found

    def logs(self) -> str:
        """The end of every process's log, for a failure's report."""
        return "\n".join(f"--- {process.name} ({process.log})\n{process.tail()}"
                         for process in self.lan.processes)

    async def stored(self, monitor_id: int) -> dict[str, list[Any]]:
        """Each location's stored results of the monitor (at, status, error), oldest first."""
        async with database(self.database_url) as db:
            rows = (await db.execute(
                select(t.locations.c.name, t.results.c.at, t.results.c.status,
                       t.results.c.error)
                .join(t.locations, t.locations.c.id == t.results.c.location_id)
                .where(t.results.c.monitor_id == monitor_id).order_by(t.results.c.at))).all()
        by_location: dict[str, list[Any]] = {name: [] for name in LOCATIONS}
        for row in rows:
            by_location.setdefault(row.name, []).append(row)
        return by_location

    async def state(self, monitor_id: int) -> Any:
        async with database(self.database_url) as db:
            return (await db.execute(select(t.monitor_state).where(
                t.monitor_state.c.monitor_id == monitor_id))).one()

    async def incidents(self, monitor_id: int) -> list[Any]:
        async with database(self.database_url) as db:
            return list((await db.execute(select(t.incidents).where(
                t.incidents.c.monitor_id == monitor_id).order_by(t.incidents.c.id))).all())

    async def messages(self, monitor_id: int) -> list[Any]:
        async with database(self.database_url) as db:
            return list((await db.execute(select(n.messages).where(
                n.messages.c.monitor_id == monitor_id).order_by(n.messages.c.id))).all())

    async def add_monitor(self, name: str, path: str) -> int:
        """Create a monitor, as ``dozor apply`` or the API would (the server picks it up
        within its reload interval, the probes within their sync interval)."""
        async with database(self.database_url) as db:
            return await monitor_store.create_monitor(db, parse_monitor(monitor_spec(name,
                                                                                   path)))


async def install(site: Site, template: Path) -> dict[str, str]:
    """Lay the database, the operator's probes and mail channel, and a confirmed contact
    down; the probes' tokens by location."""
    (site.directory / "server").mkdir()
    shutil.copyfile(template, site.directory / "server" / "dozor.db")
    outputs = site.operator(
        *[["probes", "add", f"probe-{name}", "--location", name] for name in LOCATIONS],
        ["channels", "add", "mail", "email", "--set", f"host={ADDRESSES['mail']}",
         "--set", f"port={SMTP_PORT}", "--set", "security=none",
         "--set", "from-address=dozor@example.com",
         # Without it the channel asks for this host's FQDN: a DNS look-up that cannot
         # be answered inside a namespace.
         "--set", "helo-name=dozor.test"])
    tokens = {}
    for name, output in zip(LOCATIONS, outputs, strict=False):
        found = re.search(rf"^{TOKEN_PREFIX}\S+$", output, re.MULTILINE)
        assert found is not None, output
        tokens[name] = found.group()
    engine = create_engine(site.database_url)
    try:
        await add_contact(engine, "ops", [{"kind": "email", "address": CONTACT}])
    finally:
        await engine.dispose()
    return tokens
