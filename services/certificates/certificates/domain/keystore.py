"""Opening an uploaded certificate bundle (PKCS#12, JKS, PEM certificate + key) the way SEPM
would, and saying precisely why it cannot be opened. Nothing here ever repeats a secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import jks
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc7292

from certificates.domain.keystore_limits import (
    check_chain_length,
    check_encrypted_pem_key,
    check_jks_header,
    check_size,
    inspect_pkcs12,
)
from certificates.domain.rejections import INVALID_KEYSTORE, BundleRejected
from certrotate_shared.hostops.arguments import UnsafeHostArgument, check_host_name

__all__ = ["INVALID_KEYSTORE", "BundleRejected", "OpenedBundle", "Upload", "open_bundle"]

BundleFormat = Literal["pkcs12", "jks", "pem"]


@dataclass(frozen=True)
class Upload:
    """An uploaded bundle as received; repr never shows the secrets."""

    format: BundleFormat
    data: bytes = field(repr=False)
    password: str | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)  # PEM private key, for format "pem"


@dataclass(frozen=True)
class OpenedBundle:
    """The certificates (in file order) and the private key found in a bundle."""

    certificates: list[x509.Certificate]
    private_key: PrivateKeyTypes = field(repr=False)
    # PKCS#12 bags carry no meaningful order; JKS chains and PEM files do.
    ordered: bool


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def open_bundle(upload: Upload) -> OpenedBundle:
    """Read the bundle; raises BundleRejected (corrupt, wrong_password, no_private_key)."""
    if not upload.data:
        raise BundleRejected("corrupt", f"{INVALID_KEYSTORE}: the uploaded file is empty")
    check_size(upload.data)
    if upload.key is not None:
        check_size(upload.key)
    if upload.format == "pkcs12":
        return _open_pkcs12(upload.data, upload.password)
    if upload.format == "jks":
        return _open_jks(upload.data, upload.password)
    return _open_pem(upload.data, upload.key, upload.password)


def _open_pkcs12(data: bytes, password: str | None) -> OpenedBundle:
    shape = inspect_pkcs12(data)  # refuses excessive key derivations before they run
    for name in shape.key_names if shape else []:
        # keytool -importkeystore names the JKS entry after it: it reaches keytool's command line.
        _check_alias(name)
    secret = password.encode() if password else None
    try:
        loaded = pkcs12.load_pkcs12(data, secret)
    except UnsupportedAlgorithm:
        raise BundleRejected(
            "corrupt",
            f"{INVALID_KEYSTORE}: the PKCS#12 file uses an encryption this service cannot "
            "read; export it again with AES-256 (or 3DES) protection",
        ) from None
    except ValueError:
        # cryptography says the same for a bad password and a damaged file; a file whose
        # outer PFX structure parses completely is intact, so the password is what is wrong.
        if _is_whole_pfx(data):
            raise BundleRejected(
                "wrong_password",
                "The PKCS#12 file is intact but the password does not open it",
            ) from None
        raise BundleRejected(
            "corrupt",
            f"{INVALID_KEYSTORE}: the PKCS#12 file is damaged or truncated "
            f"({len(data)} bytes could not be parsed)",
        ) from None
    if loaded.cert is not None and loaded.cert.friendly_name is not None:
        _check_alias(loaded.cert.friendly_name.decode("utf-8", "replace"))
    # The certificate bag tied to the key comes first; a key that matches no certificate
    # leaves them all in additional_certs, which the key check reports as a mismatch.
    certs = [c.certificate for c in ([loaded.cert] if loaded.cert else [])]
    certs += [c.certificate for c in loaded.additional_certs]
    if not certs:
        raise BundleRejected("corrupt", f"{INVALID_KEYSTORE}: the PKCS#12 file has no certificate")
    check_chain_length(len(certs))
    if loaded.key is None:
        raise BundleRejected(
            "no_private_key",
            "The PKCS#12 file holds a certificate but no private key; export it with its key",
        )
    return OpenedBundle(certs, loaded.key, ordered=False)


def _is_whole_pfx(data: bytes) -> bool:
    try:
        _decoded, rest = der_decoder.decode(data, asn1Spec=rfc7292.PFX())
    except (PyAsn1Error, ValueError, TypeError):
        return False
    return not rest


def _open_jks(data: bytes, password: str | None) -> OpenedBundle:
    if password is None:
        raise BundleRejected("wrong_password", "A JKS keystore needs its keystore password")
    check_jks_header(data)  # JCEKS's sealed keys would be decrypted by a pure-Python loop
    try:
        store = jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise BundleRejected(
            "wrong_password",
            "Keystore was tampered with, or password was incorrect: the keystore password "
            "does not verify the JKS file",
        ) from None
    except Exception:  # pyjks raises many unrelated types for a damaged file
        raise BundleRejected(
            "corrupt",
            f"{INVALID_KEYSTORE}: the JKS file is damaged or truncated, or not a JKS keystore",
        ) from None
    entries = store.private_keys
    if not entries:
        raise BundleRejected(
            "no_private_key",
            "The JKS keystore holds no private-key entry (only trusted certificates)",
        )
    if len(entries) > 1:
        raise BundleRejected(
            "multiple_keys",
            "The JKS keystore holds several private-key entries "
            f"({', '.join(sorted(entries))}); SEPM needs exactly one",
        )
    alias, entry = next(iter(entries.items()))
    _check_alias(alias)
    check_chain_length(len(entry.cert_chain))
    try:
        # SEPM's server.xml carries one keystore password, so the key must open with it too.
        entry.decrypt(password)
        key = serialization.load_der_private_key(entry.pkey_pkcs8, password=None)
    except jks.util.DecryptionFailureException:
        raise BundleRejected(
            "wrong_password",
            f"The private-key entry {alias!r} does not open with the keystore password; "
            "SEPM needs the key password to equal the keystore password",
        ) from None
    except (ValueError, TypeError, jks.util.KeystoreException):
        raise BundleRejected(
            "corrupt", f"{INVALID_KEYSTORE}: the private key of entry {alias!r} cannot be read"
        ) from None
    try:
        certs = [x509.load_der_x509_certificate(der) for _kind, der in entry.cert_chain]
    except ValueError:
        raise BundleRejected(
            "corrupt", f"{INVALID_KEYSTORE}: the certificate chain of entry {alias!r} is damaged"
        ) from None
    if not certs:
        raise BundleRejected("corrupt", f"{INVALID_KEYSTORE}: entry {alias!r} has no certificate")
    return OpenedBundle(certs, key, ordered=True)


def _check_alias(alias: str) -> None:
    """The install passes the alias to keytool on the SEPM host: only plain names go there."""
    try:
        check_host_name(alias, what="The keystore alias")
    except UnsafeHostArgument as exc:
        raise BundleRejected(
            "unsafe_alias", f"{exc}. Export the keystore again with a plain alias (e.g. sepm)"
        ) from None


def _open_pem(data: bytes, key_data: bytes | None, password: str | None) -> OpenedBundle:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BundleRejected(
            "corrupt",
            "Invalid certificate file: no readable PEM certificate (damaged, truncated, or "
            "not PEM)",
        ) from None
    # The PEM reader skips a block it cannot finish, so a truncated bundle would just look
    # shorter; counting the blocks catches it.
    blocks = data.count(b"-----BEGIN CERTIFICATE-----")
    check_chain_length(blocks)
    if blocks != len(certs):
        raise BundleRejected(
            "corrupt",
            f"Invalid certificate file: {blocks - len(certs)} of the {blocks} PEM certificates "
            "are damaged or truncated",
        )
    if key_data is None:
        if b"PRIVATE KEY-----" not in data:
            raise BundleRejected(
                "no_private_key",
                "The PEM file holds only certificates; upload the matching private key "
                "as well (key_b64)",
            )
        key_data = data
    return OpenedBundle(certs, _load_pem_key(key_data, password), ordered=True)


def _load_pem_key(key_data: bytes, password: str | None) -> PrivateKeyTypes:
    encrypted = b"ENCRYPTED" in key_data
    if encrypted and not password:
        raise BundleRejected(
            "wrong_password", "The private key is encrypted; give its password to open it"
        )
    secret = password.encode() if (password and encrypted) else None
    check_encrypted_pem_key(key_data)
    try:
        return serialization.load_pem_private_key(key_data, password=secret)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise BundleRejected(
                "wrong_password", "The password does not open the encrypted private key"
            ) from None
        raise BundleRejected(
            "corrupt",
            "Invalid private key file: the key is damaged, truncated, or not a PEM private key",
        ) from None
