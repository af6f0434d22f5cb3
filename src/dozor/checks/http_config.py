"""The http kind's config: what a person writes, validated, and the request it prepares.

Everything a run needs is worked out here once (URL, headers with credentials, TLS
context, accepted statuses, whether the body is read), so a run does no parsing.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from yarl import URL

from dozor.checks.base import CheckConfig
from dozor.core.conditions import Condition, parse_condition
from dozor.core.durations import format_duration, parse_duration
from dozor.outbound import HttpRequest, tls_setting

MIB = 1024 * 1024
DEFAULT_STATUS = ((200, 399),)


def _condition(value: object) -> Condition:
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ValueError("a condition is text, like '[STATUS] == 200'")
    return parse_condition(value)


ConditionText = Annotated[
    Condition,
    PlainValidator(_condition, json_schema_input_type=str),
    PlainSerializer(str, return_type=str),
]


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    username: str = Field(min_length=1, pattern=r"^[^:]*$")  # the colon separates the two
    password: SecretStr

    def header(self) -> str:
        """The Authorization value (RFC 7617, in UTF-8)."""
        pair = f"{self.username}:{self.password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run of an HttpConfig needs, prepared once when the config is validated."""

    request: HttpRequest
    status: tuple[tuple[int, int], ...]


class HttpConfig(CheckConfig):
    """What to request and what counts as up; validated once, when the monitor is saved.

    >>> config = HttpConfig.model_validate({"url": "https://example.com/", "method": "head"})
    >>> config.method, config.status_text, config.target_host()
    ('HEAD', '200-399', 'example.com')
    """

    # Inputs may hold secrets (a password given as a number, say): never echo them.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    # None: 200-399, unless a condition checks [STATUS] itself.
    expected_status: tuple[tuple[int, int], ...] | None = None
    keyword: str | None = Field(None, min_length=1)
    keyword_absent: str | None = Field(None, min_length=1)
    keyword_case_sensitive: bool = False
    conditions: tuple[ConditionText, ...] = ()
    max_response_time: timedelta | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(10, ge=1, le=30)
    verify_tls: bool = True
    ca: str | None = None  # a PEM file's path, or the PEM itself; trusted instead of the system's
    ip_family: Literal["any", "ipv4", "ipv6"] = "any"
    max_body_bytes: int = Field(MIB, ge=1, le=64 * MIB)

    # Worked out once here, so a run does no parsing; one plain object, because each
    # read of a pydantic private attribute goes through a slow __getattr__.
    _plan: Plan = PrivateAttr()

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = URL(value.strip())
        if url.scheme not in ("http", "https"):
            raise ValueError("the URL must start with http:// or https://")
        if not url.host:
            raise ValueError("the URL has no host")
        if url.user is not None or url.password is not None:
            raise ValueError("put credentials in basic-auth, not in the URL, where all can see")
        return str(url)

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name or any(char in name + text for char in "\r\n"):
                raise ValueError(f"header {name!r} is empty or spans lines")
        return value

    @field_validator("expected_status", mode="before")
    @classmethod
    def _parse_status(cls, value: object) -> object:
        return None if value is None else parse_status_ranges(value)

    @field_validator("max_response_time", mode="before")
    @classmethod
    def _parse_max_time(cls, value: object) -> object:
        return None if value is None else _milliseconds_or_duration(value)

    @field_validator("ca")
    @classmethod
    def _check_ca(cls, value: str | None) -> str | None:
        if value is not None:
            tls_setting(verify=True, ca=value)  # raises ValueError if it is no PEM CA
        return value

    @model_validator(mode="after")
    def _family_fits_the_address(self) -> HttpConfig:
        host = URL(self.url).host or ""
        address = _ip_address(host)
        wanted = {"ipv4": 4, "ipv6": 6}.get(self.ip_family)
        # An address of the other family would leave nothing to connect to.
        if address is not None and wanted is not None and address.version != wanted:
            raise ValueError(f"ip-family {self.ip_family} cannot reach the address {host}")
        return self

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> HttpConfig:
        given = [self.basic_auth, self.bearer_token,
                 *(name for name in self.headers if name.lower() == "authorization")]
        if sum(item is not None for item in given) > 1:
            raise ValueError("use one of basic-auth, bearer-token or an Authorization header")
        return self

    @model_validator(mode="after")
    def _head_has_no_body(self) -> HttpConfig:
        if self.method == "HEAD" and self._reads_body():
            raise ValueError("a HEAD response has no body for keywords or [BODY] to look at")
        return self

    def _reads_body(self) -> bool:
        return (self.keyword is not None or self.keyword_absent is not None
                or any(condition.placeholder == "BODY" for condition in self.conditions))

    def model_post_init(self, context: Any, /) -> None:
        request = HttpRequest(
            method=self.method, url=URL(self.url),
            headers=tuple({**self.headers, **self._auth_header()}.items()),
            body=None if self.body is None else self.body.encode(),
            tls=tls_setting(self.verify_tls, self.ca), family=self.ip_family,
            follow_redirects=self.follow_redirects, max_redirects=self.max_redirects,
            read_body=self._reads_body(), max_body_bytes=self.max_body_bytes,
        )
        self._plan = Plan(request=request, status=self._effective_status())

    def _auth_header(self) -> dict[str, str]:
        if self.basic_auth is not None:
            return {"Authorization": self.basic_auth.header()}
        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token.get_secret_value()}"}
        return {}

    def _effective_status(self) -> tuple[tuple[int, int], ...]:
        if self.expected_status is not None:
            return self.expected_status
        if any(condition.placeholder == "STATUS" for condition in self.conditions):
            return ()
        return DEFAULT_STATUS

    @field_serializer("expected_status")
    def _dump_status(self, value: tuple[tuple[int, int], ...] | None) -> list[str] | None:
        return None if value is None else [range_text(r) for r in value]

    @field_serializer("max_response_time")
    def _dump_max_time(self, value: timedelta | None) -> str | None:
        return None if value is None else format_duration(value)

    def target_host(self) -> str | None:
        return self._plan.request.url.host

    @property
    def tls(self) -> ssl.SSLContext | bool:
        """True verifies against the system's CAs, False nothing, a context its own CA."""
        return self._plan.request.tls

    @property
    def accepted_status(self) -> tuple[tuple[int, int], ...]:
        """The status ranges that count as up; empty when conditions judge the status."""
        return self._plan.status

    @property
    def needs_body(self) -> bool:
        """Whether a keyword or condition reads the body (else it is never downloaded)."""
        return self._plan.request.read_body

    @property
    def status_text(self) -> str:
        """The accepted status codes as a person writes them: ``200-399``, ``200, 304``."""
        return ", ".join(range_text(r) for r in self._plan.status)


def parse_status_ranges(value: object) -> tuple[tuple[int, int], ...]:
    """Status codes and ranges, from ``200``, ``"200-299"``, ``"200,204"`` or a list of them.

    >>> parse_status_ranges(["200-299", 304])
    ((200, 299), (304, 304))
    """
    items = list(value) if isinstance(value, list | tuple) else [value]
    parts = [part for item in items
             for part in (item.split(",") if isinstance(item, str) else [item])]
    if not parts:
        raise ValueError("list at least one status code")
    return tuple(_status_range(part) for part in parts)


def _status_range(item: object) -> tuple[int, int]:
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and re.fullmatch(r"\s*\d{3}\s*(-\s*\d{3}\s*)?", item):
        low_text, _, high_text = item.partition("-")
        low, high = int(low_text), int(high_text or low_text)
    else:
        raise ValueError(f"{item!r} is not a status code or a range like 200-299")
    if not 100 <= low <= high <= 599:
        raise ValueError(f"{item!r}: status codes go from 100 to 599, low before high")
    return low, high


def range_text(status_range: tuple[int, int]) -> str:
    low, high = status_range
    return str(low) if low == high else f"{low}-{high}"


def _milliseconds_or_duration(value: object) -> timedelta:
    """A bare number is milliseconds (``2000``); text with a unit is a duration (``2s``)."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = timedelta(milliseconds=value)
    elif isinstance(value, str):
        text = value.strip()
        is_number = re.fullmatch(r"\d+(\.\d+)?", text)
        duration = timedelta(milliseconds=float(text)) if is_number else parse_duration(text)
    else:
        raise ValueError("give milliseconds (2000) or a duration (2s)")
    if duration <= timedelta(0):
        raise ValueError("must be more than zero")
    return duration


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
