"""``dozor probe`` as an operator starts it: its help, refused options, a refused token."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dozor.cli import main
from dozor.probe.agent import OUTBOX
from tests.cli_results import fails, ok
from tests.servers.probe_server import FakeProbeServer


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "var"))
    return CliRunner()


@pytest.fixture
def fake_server() -> Iterator[FakeProbeServer]:
    """The fake server on a loop of its own thread, since the command runs its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeProbeServer()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
    yield server
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def test_the_help_names_every_option(runner: CliRunner) -> None:
    text = ok(runner.invoke(main, ["probe", "--help"]))
    for option in ("--server", "--token", "--location", "--data-dir", "DOZOR_PROBE_SERVER"):
        assert option in text


def test_a_server_url_that_is_not_http_is_refused_naming_the_option(runner: CliRunner) -> None:
    result = runner.invoke(main, ["probe", "--server", "ftp://dozor.example.com",
                                  "--token", "dzp_x"])
    assert result.exit_code == 2
    assert "'--server'" in result.output and "http:// or https://" in result.output


def test_a_missing_token_is_refused(runner: CliRunner,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOZOR_PROBE_SERVER", "https://dozor.example.com")
    assert "DOZOR_PROBE_TOKEN" in fails(runner.invoke(main, ["probe"]))


def test_a_revoked_token_stops_the_command_saying_so(
    runner: CliRunner, fake_server: FakeProbeServer, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["probe", "--server", fake_server.url(), "--token", "dzp_old",
                                  "--data-dir", str(tmp_path / "probe")])
    assert result.exit_code == 1
    assert "the probe stopped" in result.output and "revoked" in result.output
    assert (tmp_path / "probe" / OUTBOX).exists()
