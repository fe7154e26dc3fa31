"""A small test PKI: a CA (optionally with intermediates) issuing server certificates with the
SANs, validity and keys a test asks for, exported as PKCS#12, JKS or PEM.

    root = TestCA.root()
    issuing = root.intermediate("Issuing CA")
    cert = issuing.issue(["sepm-a1.example.com", "10.0.0.5"], days=365)
    cert.pkcs12("pw"); cert.jks("pw"); cert.pem_bundle(); cert.key_pem()

RSA key generation is slow on a 2-core machine, so keys are pooled per (kind, size, slot):
certificates stay unique (serials), keys are reused across tests.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

KeyKind = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_KEYS: dict[tuple[str, int, int], PrivateKey] = {}


def make_key(kind: KeyKind = "rsa", size: int = 2048, slot: int = 0) -> PrivateKey:
    """A pooled private key; a different `slot` gives a different key of the same shape."""
    pool_key = (kind, size, slot)
    if pool_key not in _KEYS:
        _KEYS[pool_key] = (
            rsa.generate_private_key(public_exponent=65537, key_size=size)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
    return _KEYS[pool_key]


def now_utc() -> datetime:
    return datetime.now(UTC)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex (what SEPM's ports are checked against)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Certrotate Test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hostnames: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class IssuedCertificate:
    """A server certificate, its key, and its issuer chain (nearest issuer first, root last)."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def cert_pem(self) -> bytes:
        return _pem(self.certificate)

    def pem_bundle(self, *, with_chain: bool = True) -> bytes:
        """Leaf first, then the chain in order (what a correctly ordered PEM looks like)."""
        certs = [self.certificate, *(self.chain if with_chain else [])]
        return b"".join(_pem(c) for c in certs)

    def key_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def pkcs12(self, password: str | None, *, with_chain: bool = True) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            b"sepm",
            self.key,
            self.certificate,
            self.chain if with_chain else None,
            encryption,
        )

    def jks(
        self,
        store_password: str,
        *,
        key_password: str | None = None,
        alias: str = "sepm",
        with_chain: bool = True,
    ) -> bytes:
        """A Java keystore with one private-key entry (key password defaults to the store's)."""
        pkcs8 = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certs = [self.certificate, *(self.chain if with_chain else [])]
        ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
        entry = jks.PrivateKeyEntry.new(alias, ders, pkcs8, "pkcs8")
        entry.encrypt(key_password or store_password)
        data: bytes = jks.KeyStore.new("jks", [entry]).saves(store_password)
        return data

    def upload(
        self,
        fmt: Literal["pkcs12", "jks", "pem"],
        password: str = "pw",  # noqa: S107
    ) -> dict[str, Any]:
        """The JSON body fields of POST /internal/v1/bundles for this certificate."""
        if fmt == "pkcs12":
            return {"format": fmt, "data_b64": b64(self.pkcs12(password)), "password": password}
        if fmt == "jks":
            return {"format": fmt, "data_b64": b64(self.jks(password)), "password": password}
        return {
            "format": fmt,
            "data_b64": b64(self.pem_bundle()),
            "key_b64": b64(self.key_pem()),
            "password": None,
        }


@dataclass
class TestCA:
    """A certificate authority; `chain` is what lies above it (empty for a root)."""

    __test__ = False  # not a pytest test class

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    chain: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def root(cls, common_name: str = "Test Root CA", *, slot: int = 1) -> TestCA:
        key = make_key("rsa", 2048, slot)
        now = now_utc()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return _pem(self.certificate)

    def intermediate(self, common_name: str = "Test Issuing CA", *, slot: int = 2) -> TestCA:
        key = make_key("rsa", 2048, slot)
        now = now_utc()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return TestCA(cert, key, [self.certificate, *self.chain])

    def issue(
        self,
        hostnames: list[str],
        *,
        common_name: str | None = None,
        days: float = 365,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_kind: KeyKind = "rsa",
        key_size: int = 2048,
        key_slot: int = 10,
        with_san: bool = True,
    ) -> IssuedCertificate:
        """A TLS server certificate for `hostnames` (DNS names or IP addresses)."""
        key = make_key(key_kind, key_size, key_slot)
        start = not_before or now_utc() - timedelta(days=1)
        end = not_after or start + timedelta(days=days)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or (hostnames[0] if hostnames else "server")))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if with_san and hostnames:
            builder = builder.add_extension(_san(hostnames), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return IssuedCertificate(cert, key, [self.certificate, *self.chain])
