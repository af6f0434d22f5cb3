"""The dozor command as a person uses it, on a real database file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from dozor.cli import main
from tests import fakes  # noqa: F401  (registers the scripted kind)
from tests.cli_results import ok

FILE = """\
monitors:
  - name: alpha
    kind: scripted
    key: a
    tags: [web]
"""


@pytest.fixture
def dozor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"]).exit_code == 0
    return runner


def test_apply_then_list_then_export(dozor: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(FILE)
    assert "+ create monitor alpha" in ok(dozor.invoke(main, ["apply", "--dry-run", str(path)]))
    assert "alpha" not in ok(dozor.invoke(main, ["monitors", "list"]))
    ok(dozor.invoke(main, ["apply", str(path)]))
    assert "nothing to change" in ok(dozor.invoke(main, ["apply", str(path)]))
    listing = ok(dozor.invoke(main, ["monitors", "list"]))
    assert "alpha" in listing and "unknown" in listing
    exported = ok(dozor.invoke(main, ["export"]))
    assert "name: alpha" in exported and "key: a" in exported


def test_an_invalid_file_names_the_line_and_applies_nothing(
    dozor: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(FILE + "  - name: beta\n    kind: scripted\n    key: b\n    interval: never\n")
    result = dozor.invoke(main, ["apply", str(path)])
    assert result.exit_code == 1
    assert f"{path}:9: monitors[1].interval" in result.output
    assert "alpha" not in ok(dozor.invoke(main, ["monitors", "list"]))


def test_pause_resume_and_remove_by_name(dozor: CliRunner) -> None:
    ok(dozor.invoke(main, ["monitors", "add", "solo", "--kind", "scripted", "-o", "key=s"]))
    assert "paused solo" in ok(dozor.invoke(main, ["monitors", "pause", "solo"]))
    assert "resumed solo" in ok(dozor.invoke(main, ["monitors", "resume", "solo"]))
    assert "removed solo" in ok(dozor.invoke(main, ["monitors", "rm", "solo"]))
    missing = dozor.invoke(main, ["monitors", "rm", "solo"])
    assert missing.exit_code == 1 and "no monitor named 'solo'" in missing.output


def test_show_prints_the_push_url_of_a_heartbeat_monitor(dozor: CliRunner) -> None:
    ok(dozor.invoke(main, ["monitors", "add", "job", "--kind", "heartbeat",
                           "-o", "period=1h"]))
    shown = ok(dozor.invoke(main, ["monitors", "show", "job"]))
    assert "kind: heartbeat" in shown and "period: 1h" in shown
    assert "push URL: http://127.0.0.1:8000/ping/" in shown


def test_adding_an_invalid_monitor_names_the_field(dozor: CliRunner) -> None:
    result = dozor.invoke(main, ["monitors", "add", "bad", "--kind", "scripted",
                                 "--interval", "fast", "-o", "key=x"])
    assert result.exit_code == 1 and "interval" in result.output


def test_a_bad_setting_stops_the_command_naming_it(
    dozor: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOZOR_PORT", "eighty")
    result = dozor.invoke(main, ["monitors", "list"])
    assert result.exit_code == 1 and "DOZOR_PORT" in result.output


def test_an_unreachable_database_is_one_clear_line(
    dozor: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOZOR_DATABASE_URL", "postgresql://dozor:secret@127.0.0.1:1/dozor")
    result = dozor.invoke(main, ["monitors", "list"])
    assert result.exit_code == 1
    assert "cannot use the database at postgresql://dozor:***@127.0.0.1:1/dozor" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output


def test_a_database_not_set_up_says_to_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "fresh"))
    for command in (["monitors", "list"], ["probes", "list"], ["incidents", "list"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, command
        assert "no such table" in result.output and "run dozor migrate" in result.output
        assert "Traceback" not in result.output


def test_uptime_and_incidents_read_empty_history(dozor: CliRunner) -> None:
    ok(dozor.invoke(main, ["monitors", "add", "solo", "--kind", "scripted", "-o", "key=s"]))
    assert "24h" in ok(dozor.invoke(main, ["uptime", "solo"]))
    assert "(none)" in ok(dozor.invoke(main, ["incidents", "list"]))
    assert "would remove" in ok(dozor.invoke(main, ["retention", "--dry-run"]))


def test_uptime_by_location_adds_up_to_all(dozor: CliRunner, tmp_path: Path) -> None:
    ok(dozor.invoke(main, ["monitors", "add", "solo", "--kind", "scripted", "-o", "key=s"]))
    now_ms = int(time.time() * 1000)
    with sqlite3.connect(tmp_path / "var" / "dozor.db") as db:
        stamp = "2026-01-01 00:00:00"
        db.executemany("INSERT INTO locations (name, created_at) VALUES (?, ?)",
                       [("fra", stamp), ("waw", stamp)])
        places = dict(db.execute("SELECT name, id FROM locations"))
        monitor_id = db.execute("SELECT id FROM monitors").fetchone()[0]
        # fra: 3 of 4 up, 100 ms each; waw: 4 of 4 up, 300 ms each; minutes ago.
        db.executemany(
            "INSERT INTO results (monitor_id, at, location_id, status, latency_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            [(monitor_id, now_ms - 60_000 * (n + 1), places["fra"], int(n != 0), 100)
             for n in range(4)]
            + [(monitor_id, now_ms - 60_000 * (n + 1) - 1, places["waw"], 1, 300)
               for n in range(4)])
    lines = ok(dozor.invoke(main, ["uptime", "solo", "--by-location"])).splitlines()
    day = {line.split()[1]: line.split()[2:5] for line in lines if line.startswith("24h")}
    assert day == {"fra": ["75.000%", "4", "100"], "waw": ["100.000%", "4", "300"],
                   "all": ["87.500%", "8", "200"]}
    plain = ok(dozor.invoke(main, ["uptime", "solo"])).splitlines()
    assert [line.split()[1:3] for line in plain if line.startswith("24h")] == [
        ["87.500%", "8"]]


@pytest.fixture
def local_site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            body = b"Welcome to the shop"
            self.send_response(200 if self.path == "/" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_check_prints_the_outcome_with_its_phases(dozor: CliRunner, local_site: str) -> None:
    output = ok(dozor.invoke(main, ["check", local_site + "/", "-o", "keyword=welcome"]))
    assert output.startswith("UP")
    for phase in ("dns", "connect", "first_byte", "total"):
        assert phase in output
    failed = dozor.invoke(main, ["check", local_site + "/missing"])
    assert failed.exit_code == 1 and failed.output.startswith("DOWN")
    assert "503" in failed.output


def test_check_refuses_a_target_it_cannot_read(dozor: CliRunner) -> None:
    result = dozor.invoke(main, ["check", "gopher://example"])
    assert result.exit_code == 2 and "TARGET" in result.output
    result = dozor.invoke(main, ["check", "http://127.0.0.1:1/", "-o", "colour=red"])
    assert result.exit_code == 2 and "colour" in result.output
