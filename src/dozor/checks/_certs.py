"""TLS client plumbing shared by the tcp and tls checks: contexts, handshakes, certificates.

>>> async def example(writer: asyncio.StreamWriter) -> dict[str, object]:
...     context = await client_context(verify=True, ca=None)
...     await handshake(writer, context, "example.org", Stopwatch())
...     return describe_certificate(peer_certificate(writer), datetime.now(UTC))
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from dozor.checks._net import CheckFailure, Stopwatch, ThreadBuiltCache
from dozor.core.types import ErrorCode

PEM_MARKER = "-----BEGIN CERTIFICATE-----"

# Loading the system CA store reads files and takes milliseconds of CPU: build a context
# once per setting in a thread, not on the event loop for every run.
_contexts = ThreadBuiltCache(ttl=300)

# OpenSSL X509_V_ERR_* codes grouped into the reasons a person acts on.
_REASONS = {
    9: "not_yet_valid",
    10: "expired",
    18: "self_signed",
    19: "self_signed",
    2: "unknown_issuer",
    20: "unknown_issuer",
    21: "unknown_issuer",
    23: "revoked",
    62: "hostname_mismatch",
    64: "hostname_mismatch",
}
_EXPLANATIONS = {
    "not_yet_valid": "the certificate is not valid yet",
    "expired": "the certificate has expired",
    "self_signed": "the certificate is self-signed and not trusted",
    "unknown_issuer": "the certificate is issued by an unknown or untrusted authority",
    "revoked": "the certificate has been revoked",
    "hostname_mismatch": "the certificate is not valid for {name}",
    "invalid": "the certificate is not valid",
}


def check_ca(value: str | None) -> str | None:
    """Config validator: inline PEM must parse; otherwise it is a path read at run time."""
    if value is None:
        return None
    if PEM_MARKER in value:
        try:
            x509.load_pem_x509_certificates(value.encode())
        except ValueError as error:
            raise ValueError(f"inline PEM does not parse: {error}") from None
        return value
    if not Path(value).is_absolute():
        raise ValueError("must be inline PEM or an absolute path to a PEM file")
    return value


def _build_context(verify: bool, ca: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca is None:
        return ssl.create_default_context()
    if PEM_MARKER in ca:
        return ssl.create_default_context(cadata=ca)
    return ssl.create_default_context(cafile=ca)


async def client_context(verify: bool, ca: str | None) -> ssl.SSLContext:
    """A client context; a custom ``ca`` (PEM text or path) replaces the system store."""
    try:
        return await _contexts.get((verify, ca), lambda: _build_context(verify, ca))
    except (OSError, ssl.SSLError) as error:
        raise CheckFailure(ErrorCode.CONFIGURATION, f"cannot load the CA certificates {ca!r}: "
                           f"{getattr(error, 'strerror', None) or error}") from None


def invalid_reason(error: ssl.SSLCertVerificationError) -> str:
    return _REASONS.get(error.verify_code, "invalid")


def verification_failure(error: ssl.SSLCertVerificationError, name: str) -> CheckFailure:
    reason = invalid_reason(error)
    message = _EXPLANATIONS[reason].format(name=name)
    if reason == "invalid":  # a case without its own words: OpenSSL's are all there is
        message = f"{message}: {error.verify_message}"
    return CheckFailure(ErrorCode.CERTIFICATE_INVALID, message, reason=reason,
                        verify_error=error.verify_message)


async def handshake(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, server_name: str, watch: Stopwatch
) -> None:
    """Upgrade a connected stream to TLS; verification and handshake errors become
    CERTIFICATE_INVALID and TLS failures."""
    with watch.phase("tls"):
        try:
            # No SNI for IP literals is handled by ssl itself.
            await writer.start_tls(context, server_hostname=server_name)
        except ssl.SSLCertVerificationError as error:
            raise verification_failure(error, server_name) from None
        except ssl.SSLError as error:
            raise CheckFailure(ErrorCode.TLS, f"TLS handshake failed: {error.reason or error}"
                               ) from None
        except (OSError, EOFError) as error:
            raise CheckFailure(ErrorCode.TLS, "TLS handshake failed: the server closed the "
                               f"connection ({type(error).__name__})") from None


def tls_details(writer: asyncio.StreamWriter) -> dict[str, Any]:
    ssl_object: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    return {"tls_version": ssl_object.version(), "cipher": cipher[0] if cipher else None}


def peer_certificate(writer: asyncio.StreamWriter) -> x509.Certificate | None:
    """The server's leaf certificate, also when verification was off (from its DER)."""
    ssl_object: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    return x509.load_der_x509_certificate(der) if der else None


def days_left(certificate: x509.Certificate, now: datetime) -> int:
    """Whole days until expiry, rounded down: 0 means it expires within a day."""
    return (certificate.not_valid_after_utc - now).days


def describe_certificate(certificate: x509.Certificate, now: datetime) -> dict[str, Any]:
    """The facts a person checks on a certificate, as JSON-ready values."""
    return {
        "subject": certificate.subject.rfc4514_string(),
        "common_name": _common_name(certificate),
        "issuer": certificate.issuer.rfc4514_string(),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "days_left": days_left(certificate, now),
        "sans": subject_alt_names(certificate),
        "serial": format(certificate.serial_number, "x"),
    }


def _common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def subject_alt_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = extension.value.get_values_for_type(x509.DNSName)
    addresses = extension.value.get_values_for_type(x509.IPAddress)
    return names + [str(address) for address in addresses]
