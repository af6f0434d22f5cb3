"""Separate hosts on one virtual LAN, made of Linux network namespaces (iproute2)::

    lan = Lan()
    target = lan.add("target", "10.147.0.10")
    probe = lan.add("probe", "10.147.0.21")
    lan.spawn(target, ["python3", "-m", "http.server"], {}, log_path)
    lan.cut(probe, target)    # the probe's route to the target refuses at once
    lan.restore(probe)
    lan.close()               # stops every process, deletes every namespace

Each host is a namespace whose only interface, ``eth0``, is one end of a veth pair; the
other end is plugged into a bridge in a namespace of its own. Not the root namespace:
the machine's firewall (and Docker's, which drops bridged traffic it does not know) must
not see this traffic, and nothing of the machine's own network changes. Addresses are
only ever given inside these namespaces.

Names carry this process's id and a random part, so what a killed run left behind does
not get in the next run's way; :func:`sweep_leftovers` deletes the namespaces of runs
whose process is gone. Processes are started through ``setpriv --pdeathsig KILL``, so
they die with the test process even when it is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

PREFIX = "dzt"
NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]{{4}}-")
SUBNET = 24
NOWHERE_MAC = "02:00:00:00:00:fe"  # locally administered: no real card has it


class CommandFailed(Exception):
    """An ``ip`` or ``tc`` command failed; the message has its stderr."""


def sh(*argv: str, timeout: float = 15.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add, veth pairs)"
    for tool, package in (("ip", "iproute2"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"no {tool} command ({package})"
    trial = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}-trial"
    try:
        sh("ip", "netns", "add", trial)
        try:
            sh("ip", "-n", trial, "link", "add", "name", "va", "type", "veth", "peer", "name", "vb")
        finally:
            sh("ip", "netns", "del", trial)
    except (CommandFailed, OSError, subprocess.TimeoutExpired) as error:
        return f"network namespaces cannot be made here: {error}"
    return None


def sweep_leftovers() -> None:
    """Delete the namespaces of earlier runs whose test process is gone."""
    for line in sh("ip", "netns", "list").splitlines():
        name = line.split(" ", 1)[0]
        found = NAME.match(name)
        if found is None or _alive(int(found.group(1))):
            continue
        with contextlib.suppress(CommandFailed):
            sh("ip", "netns", "del", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Host:
    role: str
    namespace: str
    address: str


@dataclass
class Process:
    """A process running on a host; its output goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would end it."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Lan:
    def __init__(self) -> None:
        self.name = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.switch = f"{self.name}-lan"
        self.hosts: list[Host] = []
        self.processes: list[Process] = []
        self._namespaces: list[str] = []
        self._undo: dict[Host, list[list[str]]] = {}  # how to undo cut() and lose()
        try:
            self._add_namespace(self.switch)
            sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.switch, "link", "set", "dev", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self._namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "dev", "lo", "up")

    def add(self, role: str, address: str) -> Host:
        """A host with ``address`` on the LAN."""
        host = Host(role, f"{self.name}-{role}", address)
        self._add_namespace(host.namespace)
        port = f"p{len(self.hosts)}"  # the bridge's side; names are per namespace
        sh("ip", "link", "add", "eth0", "netns", host.namespace, "type", "veth",
           "peer", "name", port, "netns", self.switch)
        sh("ip", "-n", self.switch, "link", "set", "dev", port, "master", "br0", "up")
        sh("ip", "-n", host.namespace, "addr", "add", f"{address}/{SUBNET}", "dev", "eth0")
        sh("ip", "-n", host.namespace, "link", "set", "dev", "eth0", "up")
        self.hosts.append(host)
        return host

    def spawn(self, host: Host, argv: list[str], env: dict[str, str], log: Path) -> Process:
        """Start ``argv`` on ``host``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, "setpriv", "--pdeathsig", "KILL",
                 "--", *argv], stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, env=env)
        process = Process(f"{host.role}: {' '.join(argv[:3])}", popen, log)
        self.processes.append(process)
        return process

    def cut(self, host: Host, to: Host) -> None:
        """``host``'s route to ``to`` refuses: connecting fails at once."""
        self._change(host, ["route", "add", "prohibit", f"{to.address}/32"],
                     ["route", "del", "prohibit", f"{to.address}/32"])

    def lose(self, host: Host, to: Host, nowhere: str) -> None:
        """``host``'s packets to ``to`` are all lost: they go by way of ``nowhere``, a LAN
        address no host has, given a made-up MAC address (so no ARP failure turns the
        loss into "host unreachable"); the bridge floods them and every host drops them.
        Connecting times out, as with total packet loss."""
        self._change(host, ["neigh", "replace", nowhere, "lladdr", NOWHERE_MAC, "dev", "eth0",
                            "nud", "permanent"], ["neigh", "del", nowhere, "dev", "eth0"])
        self._change(host, ["route", "add", f"{to.address}/32", "via", nowhere],
                     ["route", "del", f"{to.address}/32", "via", nowhere])

    def _change(self, host: Host, do: list[str], undo: list[str]) -> None:
        sh("ip", "-n", host.namespace, *do)
        self._undo.setdefault(host, []).append(undo)

    def restore(self, host: Host) -> None:
        """Undo :meth:`cut` and :meth:`lose`: ``host`` reaches every LAN address again."""
        for undo in reversed(self._undo.pop(host, [])):
            sh("ip", "-n", host.namespace, *undo)

    def restore_all(self) -> None:
        for host in list(self._undo):
            self.restore(host)

    def close(self) -> None:
        """Stop every process, then delete every namespace (the veths and the bridge go
        with them)."""
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop(grace=5)
        for name in reversed(self._namespaces):
            with contextlib.suppress(CommandFailed, subprocess.TimeoutExpired):
                sh("ip", "netns", "del", name)
