"""Is the leaf a TLS server certificate at all: not a CA, usable for serverAuth, a key usage a
TLS server can use, and not signed with a digest clients refuse (RFC 5280 4.2.1.3, .9, .12)."""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from certificates.domain.rejections import BundleRejected

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
ANY_USAGE = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


def check_server_use(leaf: x509.Certificate) -> None:
    """Refuse what no TLS client would accept from a server (RFC 5280 4.2.1.3, 4.2.1.9, 4.2.1.12)."""
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise BundleRejected(
            "ca_certificate",
            f"{_name(leaf)} is a CA certificate (basicConstraints CA:TRUE), not a server "
            "certificate; upload the certificate issued to the SEPM server",
        )
    usages = _extension(leaf, x509.ExtendedKeyUsage)
    if usages is not None and not {SERVER_AUTH, ANY_USAGE} & set(usages):
        named = ", ".join(_EKU_NAMES.get(u, u.dotted_string) for u in usages) or "none"
        raise BundleRejected(
            "eku_not_server_auth",
            f"The certificate's extended key usage ({named}) does not include serverAuth "
            "(TLS Web Server Authentication); clients would refuse it",
        )
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.key_encipherment):
        raise BundleRejected(
            "key_usage_not_server",
            "The certificate's key usage allows neither digitalSignature nor "
            "keyEncipherment, so its key cannot be used by a TLS server",
        )


def check_digest(cert: x509.Certificate) -> None:
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        digest = None
    if isinstance(digest, hashes.SHA1 | hashes.MD5):
        shown = "SHA-1" if isinstance(digest, hashes.SHA1) else "MD5"
        raise BundleRejected(
            "weak_digest",
            f"{_name(cert)} is signed with {shown}, which TLS clients no longer accept; "
            "have it reissued with SHA-256 or stronger",
            digest=shown,
        )


_ExtensionT = TypeVar("_ExtensionT", bound=x509.ExtensionType)


def _extension(cert: x509.Certificate, kind: type[_ExtensionT]) -> _ExtensionT | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()
