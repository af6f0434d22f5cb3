"""Kinds of contact points and how their addresses are checked and normalised.

An address is stored normalised, so the same phone number written two ways is one point
(and an opt-out for it matches)::

    >>> normalise_address("sms", "+48 600 100 200")
    '+48600100200'
    >>> normalise_address("email", "Ops@Example.COM")
    'ops@example.com'
    >>> normalise_address("sms", "12")
    Traceback (most recent call last):
    ...
    dozor.notify.points.AddressError: not a valid phone number in international format (+CC...)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class AddressError(ValueError):
    """An address that is not valid for its kind; the message says why."""


def _email(value: str) -> str:
    try:
        # Deliverability (a DNS lookup) is the confirmation message's job, not the parser's.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise AddressError(str(error)) from None
    return result.normalized.lower()


def _phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise AddressError("not a valid phone number in international format (+CC...)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _https_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressError("must be an http:// or https:// URL")
    return value.strip()


def _identifier(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        value = value.strip()
        if not compiled.fullmatch(value):
            raise AddressError(f"not a valid {what}")
        return value
    return check


def _apprise_url(value: str) -> str:
    if "://" not in value.strip():
        raise AddressError("must be an Apprise URL such as mailto://... or ntfy://...")
    return value.strip()


POINT_KINDS: dict[str, Callable[[str], str]] = {
    "email": _email,
    "sms": _phone,
    "whatsapp": _phone,
    "telegram": _identifier(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}", "Telegram chat id"),
    "slack": _https_url,  # an incoming-webhook URL
    "discord": _https_url,  # a channel webhook URL
    "teams": _https_url,  # a workflow (incoming webhook) URL
    "webhook": _https_url,
    "viber": _identifier(r"[A-Za-z0-9+/=_-]{4,64}", "Viber user id"),
    "messenger": _identifier(r"\d{5,32}", "Messenger page-scoped id (PSID)"),
    "apprise": _apprise_url,
}


def normalise_address(kind: str, address: str) -> str:
    """The canonical form of an address; AddressError says what is wrong with it."""
    try:
        parse = POINT_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(POINT_KINDS))
        raise AddressError(f"unknown contact point kind {kind!r} (known: {known})") from None
    return parse(address)
