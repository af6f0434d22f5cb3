"""Every setting Dozor reads, in one validated class.

Values come, in order of precedence, from environment variables ``DOZOR_<NAME>``,
from ``DOZOR_<NAME>_FILE`` (a path whose content is the value, for secrets), and
from an optional TOML or YAML file named by ``DOZOR_CONFIG``. A bad value stops
start-up with a message naming the setting::

    >>> Settings.load({"DOZOR_PORT": "80"}).port
    80
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dozor.notify.points import AddressError, normalise_address
from dozor.validation import LOCATION_PATTERN, Duration

PREFIX = "DOZOR_"
DATABASES = ("sqlite", "postgresql", "postgres")


class SettingsError(Exception):
    """A setting has a bad value; the message names it."""




class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(Path("var"), description="Where the SQLite database and keys live.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite at <data_dir>/dozor.db."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str = Field("", description="Base URL people reach Dozor at (for push URLs).")
    signup: bool = Field(False, description="Anyone may sign up (and gets an organisation). "
                         "The first user of a fresh installation can always sign up.")
    private_targets: Literal["allow", "deny"] | None = Field(
        None, description="Whether checks and webhooks may connect to private, loopback, "
        "link-local and other non-public addresses. Default: deny when sign-up is open "
        "(strangers' monitors must not probe this network), allow otherwise (a "
        "self-hosted server watches its own network).")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_token: SecretStr = Field(
        SecretStr(""), description="Bearer token that /metrics asks for. Empty: /metrics is "
        "open while the installation has a single organisation, and refused otherwise.")
    secret_key: SecretStr = Field(
        SecretStr(""), description="The instance key that seals secrets and wraps the "
        "organisations' data keys (Fernet keys, newest first, separated by commas). Empty: "
        "the key file <data_dir>/instance.key, created on first start.")

    location: str = Field("local", min_length=1, max_length=64, pattern=LOCATION_PATTERN)
    user_agent: str = "Dozor/0.1 (uptime monitor)"
    rdap_bootstrap_url: str = Field(
        "https://data.iana.org/rdap/dns.json",
        description="IANA's RDAP bootstrap registry, for domain expiry checks.",
    )

    max_concurrency: int = Field(500, ge=1, le=100_000)
    per_host_concurrency: int = Field(20, ge=1, le=10_000)
    flush_interval: Duration = timedelta(seconds=1)
    flush_batch: int = Field(1000, ge=1, le=100_000)
    reload_interval: Duration = timedelta(seconds=2)
    node_lease: Duration = Field(
        timedelta(seconds=10), description="Several server nodes on one PostgreSQL "
        "database: a node not heard for this long is taken for dead, and the others take "
        "its monitors over (each node renews every third of it).")

    notify_group_wait: Duration = Field(
        timedelta(seconds=5), description="Alerts wait this long so that what fails "
        "together reaches each recipient as one digest.")
    notify_recipient_per_hour: int = Field(
        20, ge=1, le=10_000, description="Messages a point gets an hour; beyond: one digest.")
    notify_send_timeout: Duration = timedelta(seconds=15)
    notify_concurrency: int = Field(200, ge=1, le=10_000)
    notify_max_attempts: int = Field(8, ge=1, le=100)
    notify_retry_base: Duration = Field(
        timedelta(seconds=10), description="First retry delay; it doubles per attempt.")

    retention_raw: Duration = Field(timedelta(days=14), description="Raw check results.")
    retention_hourly: Duration = Field(timedelta(days=90), description="Hourly rollups.")
    retention_daily: Duration = Field(timedelta(days=730), description="Daily rollups.")
    retention_interval: Duration = timedelta(hours=1)
    # Per plan (docs/privacy.md). In days, never shorter than the months promised: 92
    # days hold any three calendar months, 731 any two years.
    retention_trial: Duration = Field(
        timedelta(days=92), description="A trial account's data, after the trial ended.")
    retention_paid: Duration = Field(
        timedelta(days=731), description="A paid account's data, after its paid period.")
    retention_messages: Duration = Field(
        timedelta(days=365), description="Messages (the delivery log and texts), after "
        "they were sent or given up.")

    # The installation's operator: the person running this Dozor (not an organisation).
    operator_email: tuple[str, ...] = Field(
        (), description="Where notices to the operator go (a probe gone silent, and back): "
        "one or more email addresses, separated by commas. Empty: they are only logged.")
    operator_language: Literal["en", "pl"] = Field(
        "en", description="The language of the operator's notices.")
    probe_silent_after: Duration = Field(
        timedelta(minutes=5), description="A probe not heard from for this long is silent: "
        "the operator is told once, and once more when it is back. At least 2 minutes; "
        "keep it well above the probes' DOZOR_PROBE_SYNC_INTERVAL (an idle probe is "
        "heard from at each of its polls).")

    # `dozor probe` (a remote probe): its server, its token, how often it asks for changes.
    probe_server: str = Field("", description="The Dozor server a probe reports to.")
    probe_token: SecretStr = Field(SecretStr(""), description="The probe's token.")
    probe_sync_interval: Duration = Field(
        timedelta(seconds=5), description="How often a probe asks for changed monitors.")

    @field_validator("signup", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        # A boolean setting is `true` or `false`: "yes", "1" or "on" are typos waiting to
        # mean something else.
        if isinstance(value, str):
            if value.strip().lower() not in ("true", "false"):
                raise ValueError("must be true or false")
            return value.strip().lower() == "true"
        return value

    @field_validator("node_lease")
    @classmethod
    def _lease_of_seconds(cls, value: timedelta) -> timedelta:
        # Under a second, a busy node's heartbeat would miss and hand its monitors around.
        if not timedelta(seconds=1) <= value <= timedelta(minutes=10):
            raise ValueError("must be between 1s and 10m")
        return value

    @field_validator("retention_trial", "retention_paid", "retention_messages")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        # A window of a few seconds (``DOZOR_RETENTION_PAID=730``, meant as days) would
        # delete accounts the moment their period ends.
        if value < timedelta(days=1):
            raise ValueError("must be at least a day (write e.g. 92d)")
        return value

    @field_validator("operator_email", mode="before")
    @classmethod
    def _email_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if not isinstance(value, list | tuple):
            return value  # pydantic says what it wanted
        found = []
        for address in value:
            try:
                found.append(normalise_address("email", str(address)))
            except AddressError as error:
                raise ValueError(f"{address!r} is not an email address: {error}") from None
        return tuple(dict.fromkeys(found))

    @field_validator("probe_silent_after")
    @classmethod
    def _at_least_two_minutes(cls, value: timedelta) -> timedelta:
        # A probe that lost its server tries again at most a minute apart (its backoff):
        # shorter, and one back from a blip, or a server's restart, is called silent.
        if value < timedelta(minutes=2):
            raise ValueError("must be at least 2 minutes (write e.g. 5m)")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _strong_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and (len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token)):
            # A short token is guessable; a space or newline is a copy-paste accident
            # (the value travels in an HTTP header, where it cannot be sent as given).
            raise ValueError("must be at least 16 characters, without spaces")
        return value

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        for key in filter(None, (k.strip() for k in value.get_secret_value().split(","))):
            try:
                if len(base64.urlsafe_b64decode(key.encode())) != 32:
                    raise ValueError
            except (ValueError, binascii.Error):
                raise ValueError("each key must be 32 bytes in URL-safe base64 (make one "
                                 "with: python -c 'from cryptography.fernet import Fernet; "
                                 "print(Fernet.generate_key().decode())')") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and value.split(":", 1)[0].split("+", 1)[0] not in DATABASES:
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @property
    def allows_private_targets(self) -> bool:
        if self.private_targets is not None:
            return self.private_targets == "allow"
        return not self.signup

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'dozor.db'}"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (and DOZOR_CONFIG); raise SettingsError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = env.get(f"{PREFIX}CONFIG")
        if config_path:
            values.update(_read_config_file(Path(config_path)))
        values.update(_from_environment(env, set(cls.model_fields)))
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None


def _from_environment(env: Mapping[str, str], names: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        key = PREFIX + name.upper()
        if key in env:
            found[name] = env[key]
        elif key + "_FILE" in env:
            path = Path(env[key + "_FILE"])
            try:
                found[name] = path.read_text().strip()
            except OSError as error:
                raise SettingsError(f"{key}_FILE: cannot read {path}: {error.strerror}") from None
    unknown = [
        k for k in env
        if k.startswith(PREFIX) and k != f"{PREFIX}CONFIG" and not k.startswith(f"{PREFIX}TEST_")
        and k.removeprefix(PREFIX).removesuffix("_FILE").lower() not in names
    ]
    if unknown:
        raise SettingsError(f"{sorted(unknown)[0]}: unknown setting")
    return found


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise SettingsError(f"DOZOR_CONFIG: cannot read {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise SettingsError(f"DOZOR_CONFIG: {path} is not valid: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"DOZOR_CONFIG: {path} must hold a mapping of settings")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"])
        lines.append(f"{PREFIX}{name.upper()}: {problem['msg']}")
    return "\n".join(lines)
