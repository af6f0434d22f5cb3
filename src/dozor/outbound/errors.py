"""Why an outbound request failed, as an error code and a sentence for a person.

Messages never contain the request's URL path or headers, so credentials in them can't
leak; they name the host and port where that helps.
"""

from __future__ import annotations

import errno
import ssl

import aiohttp

from dozor.core.types import ErrorCode
from dozor.outbound.guard import BlockedAddress


class ExchangeError(Exception):
    """A measured exchange failed; ``code`` and ``message`` say how, for the outcome.

    >>> str(ExchangeError(ErrorCode.DNS, "cannot resolve example.test"))
    'cannot resolve example.test'
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def connect_error(error: OSError, where: str) -> ExchangeError:
    """A TCP connect that failed (``where`` is ``host:port``)."""
    if error.errno == errno.ECONNREFUSED or isinstance(error, ConnectionRefusedError):
        return ExchangeError(ErrorCode.CONNECTION_REFUSED, f"connection refused by {where}")
    reason = error.strerror or str(error) or type(error).__name__
    return ExchangeError(ErrorCode.CONNECTION, f"cannot connect to {where}: {reason}")


def tls_error(error: OSError, where: str) -> ExchangeError:
    """A TLS handshake that failed: a certificate we don't trust, or TLS itself."""
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or error.reason
        return ExchangeError(ErrorCode.CERTIFICATE_INVALID,
                             f"invalid certificate at {where}: {detail}")
    detail = getattr(error, "reason", None) or error.strerror or type(error).__name__
    return ExchangeError(ErrorCode.TLS, f"TLS handshake with {where} failed: {detail}")


def describe_error(error: BaseException) -> tuple[ErrorCode, str]:
    """An aiohttp request's failure (provider APIs, RDAP), as a code and a sentence.

    Timeouts are left to the caller, who knows the limit.

    >>> describe_error(aiohttp.ServerDisconnectedError())
    (<ErrorCode.CONNECTION: 4>, 'the server closed the connection without answering')
    """
    if isinstance(error, ExchangeError):
        return error.code, error.message
    if isinstance(error, aiohttp.ClientConnectorError):
        return _describe_connect_error(error)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return ErrorCode.CONNECTION, "the server closed the connection without answering"
    if isinstance(error, aiohttp.TooManyRedirects):
        return ErrorCode.PROTOCOL, f"too many redirects (gave up after {len(error.history)})"
    if isinstance(error, aiohttp.RedirectClientError):
        return ErrorCode.PROTOCOL, "redirected to an invalid or non-HTTP URL"
    if isinstance(error, aiohttp.ClientPayloadError):
        return ErrorCode.PROTOCOL, "the response body was cut off or malformed"
    if isinstance(error, aiohttp.ClientResponseError):
        return ErrorCode.PROTOCOL, f"invalid HTTP response: {error.message}"
    if isinstance(error, ssl.SSLError):
        return ErrorCode.TLS, f"TLS failed: {getattr(error, 'reason', None) or error.strerror}"
    if isinstance(error, OSError) and error.strerror:
        return ErrorCode.CONNECTION, f"connection failed: {error.strerror}"
    return ErrorCode.CONNECTION, f"connection failed: {type(error).__name__}"


def _describe_connect_error(error: aiohttp.ClientConnectorError) -> tuple[ErrorCode, str]:
    where = f"{error.host}:{error.port}"
    if isinstance(error.os_error, BlockedAddress):
        return ErrorCode.BLOCKED, str(error.os_error)
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        reason = error.os_error.strerror or str(error.os_error)
        return ErrorCode.DNS, f"cannot resolve {error.host}: {reason}"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        problem = error.certificate_error
        detail = getattr(problem, "verify_message", None) or getattr(problem, "reason", None)
        return ErrorCode.CERTIFICATE_INVALID, f"invalid certificate at {where}: {detail}"
    if isinstance(error, aiohttp.ClientSSLError):
        failed = tls_error(error.os_error, where)
        return failed.code, failed.message
    failed = connect_error(error.os_error, where)
    return failed.code, failed.message
