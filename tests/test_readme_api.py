"""The README's REST API walkthrough, run as written with bash, curl and jq against a real
``dozor serve`` (a separate process), with a real SMTP server taking the confirmation
mail and a local site as the monitored target.

Only what cannot be the same here is replaced: the server's and the target's addresses,
the interval (so the first check comes within seconds) and the code, read from the mail.
Every curl fails the script on an HTTP error (``--fail-with-body``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dozor.privacy import keys
from tests.engine.conftest import eventually
from tests.servers.dozor import free_port
from tests.servers.http import LocalHttpServer
from tests.servers.smtp import SmtpServer

README = Path(__file__).parent.parent / "README.md"
DOZOR = Path(sys.executable).parent / "dozor"
pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")),
                                reason="the README's walkthrough needs curl and jq")


def walkthrough() -> list[str]:
    """The shell blocks of the README's REST API section, in order."""
    section = README.read_text().split("## The REST API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


class Shell:
    """One bash process the blocks are typed into in turn, so the second sees the first's
    variables, as a reader's terminal would. Each curl fails the shell on an HTTP error
    status, with the problem it got in the output."""

    END = "__block_done__"

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, env: dict[str, str]) -> Shell:
        process = await asyncio.create_subprocess_exec(
            "bash", env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        shell = cls(process)
        await shell.run('set -euo pipefail\n'
                        'curl() { command curl --fail-with-body "$@"; echo; }\n')
        return shell

    async def run(self, script: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{script}\necho {self.END}\n".encode())
        await self.process.stdin.drain()
        output: list[str] = []
        async with asyncio.timeout(60):
            while (line := (await self.process.stdout.readline()).decode()) != f"{self.END}\n":
                assert line, "the shell stopped:\n" + "".join(output)
                output.append(line)
        return "".join(output)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class Dozor:
    """``dozor migrate``, ``dozor channels add`` and ``dozor serve`` as a newcomer runs them."""

    def __init__(self, database_url: str, data_dir: Path, smtp_port: int) -> None:
        self.port = free_port()
        self.env = os.environ | {
            "DOZOR_DATA_DIR": str(data_dir), "DOZOR_DATABASE_URL": database_url,
            "DOZOR_PORT": str(self.port), "DOZOR_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}
        self.smtp_port = smtp_port
        # The database is a copy of the tests' template: its keys are wrapped by the
        # tests' instance key, so the key file Dozor would make holds that key.
        data_dir.mkdir(parents=True, exist_ok=True)
        keys.write_key_file(data_dir / keys.KEY_FILE, keys.current().keys)

    async def command(self, *arguments: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(DOZOR), *arguments, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(60):
            output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self) -> AsyncIterator[asyncio.subprocess.Process]:
        await self.command("migrate")
        await self.command("channels", "add", "mail", "email", "--set", "host=127.0.0.1",
                           "--set", f"port={self.smtp_port}", "--set", "security=none",
                           "--set", "from-address=dozor@example.com")
        process = await asyncio.create_subprocess_exec(
            str(DOZOR), "serve", env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient() as http:
                async def up() -> bool:
                    try:
                        return (await http.get(f"{self.url}/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False
                await eventually(up, within=30)
            yield process
        finally:
            process.terminate()
            async with asyncio.timeout(30):
                await process.wait()


async def code_mailed_to(smtp: SmtpServer, address: str) -> str:
    async def mailed() -> bool:
        return any(address in m.rcpt_tos for m in smtp.received)
    await eventually(mailed, within=20)
    [mail] = [m for m in smtp.received if address in m.rcpt_tos]
    code = re.search(r"code: (\d{6})", mail.message["Subject"])
    assert code, mail.message["Subject"]
    return code.group(1)


async def first_result(url: str) -> None:
    """Wait (bounded) until the engine has stored the monitor's first check."""
    async with httpx.AsyncClient(base_url=url) as http:
        session = await http.post("/api/v1/sessions", json={
            "email": "ala@example.com", "password": "a long passphrase"})
        auth = {"Authorization": f"Bearer {session.json()['token']}"}

        async def measured() -> bool:
            results = await http.get("/api/v1/monitors/1/results", headers=auth)
            return bool(results.json()["items"])
        await eventually(measured, within=20)


async def test_the_readme_walkthrough_works_as_written(database_url: str,
                                                       tmp_path: Path) -> None:
    first, second = walkthrough()
    async with SmtpServer() as smtp, LocalHttpServer() as site:
        site.serve("/", body="welcome")
        dozor = Dozor(database_url, tmp_path / "var", smtp.port)
        async for _ in dozor.serve():
            shell = await Shell.start(dozor.env)
            try:
                first = (first.replace("http://127.0.0.1:8000", dozor.url)
                         .replace("https://example.com", site.url("/"))
                         .replace('"interval": "30s"', '"interval": "1s"'))
                output = await shell.run(first)
                assert '"name":"Homepage"' in output and '"status":"unconfirmed"' in output
                code = await code_mailed_to(smtp, "ala.oncall@example.com")
                await first_result(dozor.url)
                output = await shell.run(second.replace('"code": "123456"', f'"code": "{code}"'))
            finally:
                await shell.close()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    confirmed = [line for line in lines if line.get("address") == "ala.oncall@example.com"
                 and line.get("status") == "confirmed"]
    assert confirmed, output
    results = next(line for line in lines if "items" in line and line["items"]
                   and "latency_ms" in line["items"][0])
    assert results["items"][0]["status"] == "up"
    assert any("24h" in line and line["24h"]["checks"] >= 1 for line in lines)
    log = [line for line in lines if "items" in line and line["items"]
           and "event" in line["items"][0]]
    assert {m["event"] for m in log[-1]["items"]} == {"verification"}
    assert len(log[-1]["items"]) == 2  # sign-up's own address, then the added point
