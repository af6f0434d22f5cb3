"""Reading monitors files: valid documents, and errors that name file, line and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dozor.config.yamlfile import ConfigFileError, dump, load_file, load_text
from tests import fakes  # noqa: F401  (registers the scripted kind)

GOOD = """\
monitors:
  - name: alpha
    kind: scripted
    key: a
    interval: 30s
    confirm-after: 2
    tags: [web, eu]
  - name: beta
    kind: scripted
    key: b
maintenance:
  - name: nightly
    cron: "0 3 * * *"
    duration: 30m
    timezone: Europe/Warsaw
    monitors: [alpha]
"""


def test_a_valid_document_gives_specs_with_defaults() -> None:
    document = load_text(GOOD)
    alpha, beta = document.monitors
    assert alpha.fields.interval == timedelta(seconds=30)
    assert alpha.retry_interval == timedelta(seconds=10)
    assert alpha.confirm_after == 2 and beta.confirm_after == 3
    assert document.maintenance[0].duration == timedelta(minutes=30)


@pytest.mark.parametrize(("text", "expected"), [
    ("monitors:\n  - name: a\n    kind: scripted\n    key: a\n    interval: soon\n",
     "f.yaml:5: monitors[0].interval:"),
    ("monitors:\n  - name: a\n    kind: scripted\n    key: a\n    colour: red\n",
     "f.yaml:5: monitors[0].colour: Extra inputs are not permitted"),
    ("monitors:\n  - name: a\n    kind: teleport\n",
     "f.yaml:3: monitors[0].kind: unknown check kind"),
    ("monitors:\n  - name: a\n    kind: scripted\n", "f.yaml:2: monitors[0].key: Field required"),
    ("monitors:\n  - name: a\n    kind: scripted\n    key: a\n  - name: a\n    kind: scripted\n"
     "    key: b\n", "f.yaml:5: monitors[1].name: a monitor named 'a' is already in this file"),
    ("monitors:\n  - name: a\n    name: b\n    kind: scripted\n    key: a\n",
     "f.yaml:3: monitors[0].name: duplicate key"),
    ("monitors: [\n", "f.yaml:2: not valid YAML"),
    ("servers: []\n", "f.yaml:1: servers: unknown section"),
    ("monitors:\n  - name: a\n    kind: scripted\n    key: ${DOZOR_TEST_UNSET_VARIABLE}\n",
     "f.yaml:4: monitors[0].key: environment variable DOZOR_TEST_UNSET_VARIABLE is not set"),
    ("monitors:\n  - name: a\n    kind: scripted\n    key: a\n    interval: 10s\n"
     "    timeout: 20s\n", "f.yaml:2: monitors[0]: timeout must be between 100ms and the interval"),
    ("maintenance:\n  - name: m\n    cron: '0 3 * * *'\n    duration: 1h\n"
     "    timezone: Mars/Olympus\n    all-monitors: true\n",
     "f.yaml:5: maintenance[0].timezone: unknown time zone 'Mars/Olympus'"),
    ("monitors: []\nmaintenance:\n  - name: m\n    cron: '0 3 * * *'\n    duration: 1h\n"
     "    monitors: [ghost]\n", "f.yaml:6: maintenance[0].monitors: no monitor named 'ghost'"),
])
def test_an_error_names_the_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_text(text, "f.yaml")
    assert expected in str(caught.value)


def test_a_heartbeat_is_down_at_the_first_failure_unless_told_otherwise() -> None:
    document = load_text("monitors:\n  - {name: job, kind: heartbeat, period: 1h}\n"
                         "  - {name: slow, kind: heartbeat, period: 1h, confirm-after: 2}\n")
    assert [m.confirm_after for m in document.monitors] == [1, 2]
    assert "confirm-after" not in dump(document.monitors[:1], [])


def test_environment_variables_fill_in_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOZOR_TEST_KEY", "from-env")
    document = load_text("monitors:\n  - name: a\n    kind: scripted\n    key: ${DOZOR_TEST_KEY}\n")
    assert document.monitors[0].row_values()["config"] == {"key": "from-env"}


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_file(tmp_path / "absent.yaml")


def test_dump_reads_back_as_the_same_document() -> None:
    document = load_text(GOOD)
    again = load_text(dump(document.monitors, document.maintenance))
    assert [m.row_values() for m in again.monitors] == [m.row_values() for m in document.monitors]
    assert again.maintenance == document.maintenance


def test_merge_keys_share_defaults_and_own_keys_win() -> None:
    document = load_text(
        "monitors:\n"
        "  - &base {name: a, kind: scripted, key: k, interval: 30s}\n"
        "  - <<: *base\n"
        "    name: b\n")
    assert [(m.name, m.fields.interval) for m in document.monitors] == [
        ("a", timedelta(seconds=30)), ("b", timedelta(seconds=30))]


def test_an_unsafe_tag_is_an_error_with_its_line() -> None:
    with pytest.raises(ConfigFileError, match="f.yaml:2: could not determine a constructor"):
        load_text("monitors:\n  - name: !!python/object:os.system x\n", "f.yaml")
