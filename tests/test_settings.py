from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dozor.settings import Settings, SettingsError


def test_defaults_need_nothing_and_use_sqlite_in_var() -> None:
    settings = Settings.load({})
    assert settings.resolved_database_url == "sqlite+aiosqlite:///var/dozor.db"
    assert settings.port == 8000


def test_environment_values_are_parsed() -> None:
    settings = Settings.load({"DOZOR_PORT": "9000", "DOZOR_RETENTION_RAW": "7d"})
    assert settings.port == 9000
    assert settings.retention_raw == timedelta(days=7)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DOZOR_PORT", "eighty"), ("DOZOR_PORT", "70000"), ("DOZOR_FLUSH_BATCH", "0"),
     ("DOZOR_DATABASE_URL", "mysql://localhost/dozor"),
     ("DOZOR_RETENTION_RAW", "a week"), ("DOZOR_LOG_LEVEL", "loud"), ("DOZOR_LOCATION", "Not ok"),
     ("DOZOR_OPERATOR_EMAIL", "ops@example.com, ops-at-example.com"),
     ("DOZOR_OPERATOR_LANGUAGE", "de"), ("DOZOR_PROBE_SILENT_AFTER", "soon"),
     ("DOZOR_PROBE_SILENT_AFTER", "90s")],
)
def test_a_bad_value_names_the_setting(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.load({variable: value})


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="DOZOR_PROT"):
        Settings.load({"DOZOR_PROT": "80"})


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("postgresql://dozor@db/dozor\n")
    settings = Settings.load({"DOZOR_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url == "postgresql://dozor@db/dozor"


@pytest.mark.parametrize(("name", "text"), [
    ("dozor.toml", 'port = 8100\nretention-raw = "3d"\n'),
    ("dozor.yaml", "port: 8100\nretention-raw: 3d\n"),
])
def test_a_config_file_is_read_and_the_environment_wins(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    settings = Settings.load({"DOZOR_CONFIG": str(path)})
    assert settings.port == 8100 and settings.retention_raw == timedelta(days=3)
    assert Settings.load({"DOZOR_CONFIG": str(path), "DOZOR_PORT": "8200"}).port == 8200


def test_a_bad_value_in_the_config_file_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "dozor.toml"
    path.write_text('per-host-concurrency = 0\n')
    with pytest.raises(SettingsError, match="DOZOR_PER_HOST_CONCURRENCY"):
        Settings.load({"DOZOR_CONFIG": str(path)})


@pytest.mark.parametrize("token", ["short-secret", "has a space in it 0123456789"])
def test_a_weak_metrics_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(SettingsError, match="DOZOR_METRICS_TOKEN") as raised:
        Settings.load({"DOZOR_METRICS_TOKEN": token})
    assert token not in str(raised.value)


def test_the_metrics_token_stays_out_of_the_settings_repr(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("0123456789abcdef-metrics\n")
    settings = Settings.load({"DOZOR_METRICS_TOKEN_FILE": str(secret)})
    assert settings.metrics_token.get_secret_value() == "0123456789abcdef-metrics"
    assert "0123456789abcdef" not in repr(settings)


def test_retention_by_plan_has_its_windows_and_none_shorter_than_a_day() -> None:
    settings = Settings.load({"DOZOR_RETENTION_TRIAL": "30d"})
    assert settings.retention_trial == timedelta(days=30)
    assert (settings.retention_paid, settings.retention_messages) == (
        timedelta(days=731), timedelta(days=365))
    for variable in ("DOZOR_RETENTION_TRIAL", "DOZOR_RETENTION_PAID",
                     "DOZOR_RETENTION_MESSAGES"):
        # A bare number is seconds: 730 meant as days would erase at once.
        with pytest.raises(SettingsError, match=f"{variable}: .*at least a day"):
            Settings.load({variable: "730"})


def test_the_operator_has_addresses_and_a_probe_is_silent_after_five_minutes(
        tmp_path: Path) -> None:
    assert Settings.load({}).operator_email == ()
    assert Settings.load({}).probe_silent_after == timedelta(minutes=5)
    settings = Settings.load({"DOZOR_OPERATOR_EMAIL": " Ops@Example.COM,oncall@example.com,",
                              "DOZOR_PROBE_SILENT_AFTER": "2m"})
    assert settings.operator_email == ("ops@example.com", "oncall@example.com")
    assert settings.probe_silent_after == timedelta(minutes=2)
    with pytest.raises(SettingsError, match="'ops-at-example.com' is not an email address"):
        Settings.load({"DOZOR_OPERATOR_EMAIL": "ops-at-example.com"})
    with pytest.raises(SettingsError, match="at least 2 minutes"):
        Settings.load({"DOZOR_PROBE_SILENT_AFTER": "1m"})
    path = tmp_path / "dozor.yaml"
    path.write_text("operator-email: [ops@example.com]\n")
    assert Settings.load({"DOZOR_CONFIG": str(path)}).operator_email == ("ops@example.com",)
