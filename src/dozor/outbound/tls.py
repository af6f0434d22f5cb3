"""TLS contexts for outbound connections: the system's CAs, a configured CA, or none.

Contexts are made once and shared: building one reads certificate stores and costs far
more than a handshake.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path


def tls_setting(verify: bool, ca: str | None = None) -> ssl.SSLContext | bool:
    """What a config asks for: True checks against the system's CAs, False checks
    nothing, and a context trusts only ``ca`` (a PEM file's path, or the PEM itself).

    Raises ValueError if the CA cannot be read or is not PEM. Call it when a config is
    validated: it may read a (small) file.

    >>> tls_setting(verify=False, ca="/any/ca.pem")
    False
    """
    if not verify:
        return False
    return _ca_context(_read_pem(ca)) if ca is not None else True


def client_context(setting: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The context to connect with for a :func:`tls_setting` value.

    >>> client_context(False).verify_mode == ssl.CERT_NONE
    True
    """
    if isinstance(setting, ssl.SSLContext):
        return setting
    return _system_context() if setting else _unverified_context()


@functools.cache
def _system_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    # Verification off still gets the peer's certificate (in binary form), so its expiry
    # is reported: people turn verification off for self-signed certificates, not to
    # stop watching them expire.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _read_pem(value: str) -> str:
    if "-----BEGIN" in value:
        return value
    try:
        return Path(value).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise ValueError(f"cannot read the CA file {value}: {reason}") from None


@functools.lru_cache(maxsize=128)
def _ca_context(pem: str) -> ssl.SSLContext:
    """One TLS context per CA, shared by every request that trusts it."""
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise ValueError("the CA is not a PEM certificate") from None
