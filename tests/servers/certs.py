"""Server certificates for TLS tests, from one trustme CA plus a self-signed one.

>>> certificates = make_certificates()
>>> context = certificates.valid.server_context()
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMES = ("localhost", "dozor.test", "127.0.0.1", "::1")
EXPIRING_IN_DAYS = 5


@dataclass(frozen=True)
class ServerCert:
    chain_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:  # ssl loads chains from files only
            chain, key = Path(folder, "chain.pem"), Path(folder, "key.pem")
            chain.write_bytes(self.chain_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(chain, key)
        return context


@dataclass(frozen=True)
class CertificateSet:
    ca_pem: str  # trust this to accept every certificate but self_signed
    valid: ServerCert
    expiring: ServerCert  # expires in EXPIRING_IN_DAYS days (and a few hours)
    expired: ServerCert
    wrong_host: ServerCert  # valid, but only for other.test
    self_signed: ServerCert


def _leaf(ca: trustme.CA, *names: str, not_before: datetime | None = None,
          not_after: datetime | None = None) -> ServerCert:
    leaf = ca.issue_cert(*names, not_before=not_before, not_after=not_after)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return ServerCert(chain, leaf.private_key_pem.bytes())


def _self_signed() -> ServerCert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    sans = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
        .add_extension(sans, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ServerCert(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def make_certificates() -> CertificateSet:
    ca = trustme.CA()
    now = datetime.now(UTC)
    return CertificateSet(
        ca_pem=ca.cert_pem.bytes().decode(),
        valid=_leaf(ca, *NAMES),
        expiring=_leaf(ca, *NAMES, not_after=now + timedelta(days=EXPIRING_IN_DAYS, hours=6)),
        expired=_leaf(ca, *NAMES, not_before=now - timedelta(days=60),
                      not_after=now - timedelta(days=2)),
        wrong_host=_leaf(ca, "other.test"),
        self_signed=_self_signed(),
    )
