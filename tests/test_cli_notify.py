"""The alert-delivery commands as a person uses them: a contact, a point, its code, the
channels, the delivery log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from dozor.cli import main
from tests.cli_results import fails, ok


@pytest.fixture
def dozor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"]).exit_code == 0
    return runner


def test_a_contact_adds_a_phone_and_confirms_it_with_the_code(
        dozor: CliRunner, tmp_path: Path) -> None:
    ok(dozor.invoke(main, ["contacts", "add", "ala", "--timezone", "Europe/Warsaw",
                           "--language", "pl"]))
    added = ok(dozor.invoke(main, ["points", "add", "ala", "sms", "+48 600 100 200",
                                   "--escalation", "15"]))
    assert "point 1 added (unconfirmed)" in added
    assert "unconfirmed" in ok(dozor.invoke(main, ["points", "list"]))
    assert "code sent" in ok(dozor.invoke(main, ["points", "verify", "1"]))
    log = ok(dozor.invoke(main, ["messages", "list"]))
    assert "verification" in log and "queued" in log
    with sqlite3.connect(tmp_path / "var" / "dozor.db") as db:
        [(subject,)] = db.execute("SELECT subject FROM messages").fetchall()
    code = subject.rsplit(" ", 1)[1]
    assert "wrong code" in fails(dozor.invoke(main, ["points", "confirm", "1", "000000"
                                                     if code != "000000" else "111111"]))
    ok(dozor.invoke(main, ["points", "confirm", "1", code]))
    listing = ok(dozor.invoke(main, ["points", "list"]))
    assert "+48600100200" in listing and "confirmed" in listing and "15m" in listing


def test_wrong_codes_count_even_though_the_command_fails(dozor: CliRunner,
                                                       tmp_path: Path) -> None:
    ok(dozor.invoke(main, ["contacts", "add", "ala"]))
    ok(dozor.invoke(main, ["points", "add", "ala", "sms", "+48600100200"]))
    ok(dozor.invoke(main, ["points", "verify", "1"]))
    with sqlite3.connect(tmp_path / "var" / "dozor.db") as db:
        [(subject,)] = db.execute("SELECT subject FROM messages").fetchall()
    code = subject.rsplit(" ", 1)[1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert "wrong code" in fails(dozor.invoke(main, ["points", "confirm", "1", wrong]))
    assert "no confirmation is waiting" in fails(dozor.invoke(main, ["points", "confirm",
                                                                     "1", code]))


def test_bad_input_names_the_field_and_changes_nothing(dozor: CliRunner) -> None:
    assert "timezone" in fails(dozor.invoke(main, ["contacts", "add", "x", "--timezone",
                                                   "Mars/Base"]))
    ok(dozor.invoke(main, ["contacts", "add", "ala"]))
    assert "address" in fails(dozor.invoke(main, ["points", "add", "ala", "sms", "12"]))
    assert "escalation_minutes" in fails(dozor.invoke(main, ["points", "add", "ala", "email",
                                                             "a@example.com",
                                                             "--escalation", "7"]))
    assert "contact" in fails(dozor.invoke(main, ["points", "add", "bob", "email",
                                                  "b@example.com"]))
    assert "a contact named" in fails(dozor.invoke(main, ["contacts", "add", "ala"]))
    assert ok(dozor.invoke(main, ["points", "list"])) == "(none)\n"


def test_one_address_written_two_ways_is_one_point(dozor: CliRunner) -> None:
    ok(dozor.invoke(main, ["contacts", "add", "ala"]))
    ok(dozor.invoke(main, ["points", "add", "ala", "email", "ala@example.com"]))
    assert "address" in fails(dozor.invoke(main, ["points", "add", "ala", "email",
                                                  "Ala@Example.com"]))
    assert ok(dozor.invoke(main, ["points", "list"])).count("ala@example.com") == 1


def test_channels_are_validated_by_their_kind(dozor: CliRunner) -> None:
    error = fails(dozor.invoke(main, ["channels", "add", "mail", "email", "--set", "port=x"]))
    assert "host" in error and "port" in error
    added = ok(dozor.invoke(main, ["channels", "add", "mail", "email", "--set",
                                   "host=127.0.0.1", "--set", "from-address=dozor@example.com",
                                   "--set", "security=none"]))
    assert "/hooks/1/" in added
    assert "mail" in ok(dozor.invoke(main, ["channels", "list"]))


def test_a_channel_field_can_be_json(dozor: CliRunner) -> None:
    ok(dozor.invoke(main, ["channels", "add", "wa", "whatsapp", "--set", "access-token=t",
                           "--set", "app-secret=s", "--set", "verify-token=v",
                           "--set", "phone-number-id=123",
                           "--set", 'templates={"down": "dozor_alert"}']))
    assert "not valid JSON" in fails(dozor.invoke(main, ["channels", "add", "wa2", "whatsapp",
                                                         "--set", "templates={nope"]))
