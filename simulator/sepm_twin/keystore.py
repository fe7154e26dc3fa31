"""Reading a certificate to install (PKCS#12, JKS, or PEM certificate + key) the way SEPM does.

The messages are the ones SEPM's configuration wizard shows, so the product can map them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jks
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc7292

from sepm_twin.certificates import KeyPair

INVALID_KEYSTORE = "Invalid keystore file"
INVALID_PRIVATE_KEY = "Invalid private key file"
INVALID_CERTIFICATE = "Invalid certificate file"
WRONG_PASSWORD = "Keystore was tampered with, or password was incorrect"  # noqa: S105
KEY_MISMATCH = "The private key does not match the certificate"
NOT_RSA = "Only RSA certificates are supported"


class KeystoreError(Exception):
    """A certificate SEPM would refuse to install."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def read_install_request(body: dict[str, Any]) -> KeyPair:
    """Turn the host-agent install body into a key pair, or raise KeystoreError."""
    fmt = body.get("format")
    data = _b64(body.get("data_b64"), INVALID_KEYSTORE if fmt != "pem" else INVALID_CERTIFICATE)
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise KeystoreError("INVALID_REQUEST", "password must be a string")
    if fmt == "pkcs12":
        cert, key = _read_pkcs12(data, password or "")
    elif fmt == "jks":
        cert, key = _read_jks(data, password or "", body.get("alias"))
    elif fmt == "pem":
        key_data = _b64(body.get("key_b64"), INVALID_PRIVATE_KEY)
        cert, key = _read_pem(data, key_data, password)
    else:
        raise KeystoreError("INVALID_REQUEST", "format must be one of pkcs12, jks, pem")
    return _checked_pair(cert, key)


def _b64(value: Any, message: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise KeystoreError("INVALID_FILE", message)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeystoreError("INVALID_FILE", message) from exc


def _read_pkcs12(data: bytes, password: str) -> tuple[x509.Certificate, Any]:
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(data, password.encode())
    except ValueError as exc:
        # cryptography reports a bad password and a corrupt file alike; a file whose outer
        # PFX structure parses is intact, so the password must be what is wrong.
        if _is_pfx(data):
            raise KeystoreError("WRONG_PASSWORD", WRONG_PASSWORD) from exc
        raise KeystoreError("INVALID_KEYSTORE", INVALID_KEYSTORE) from exc
    if key is None or cert is None:
        raise KeystoreError("INVALID_KEYSTORE", INVALID_KEYSTORE)
    return cert, key


def _is_pfx(data: bytes) -> bool:
    try:
        _decoded, rest = der_decoder.decode(data, asn1Spec=rfc7292.PFX())
    except (PyAsn1Error, ValueError, TypeError):
        return False
    return not rest


def _read_jks(data: bytes, password: str, alias: Any) -> tuple[x509.Certificate, Any]:
    try:
        store = jks.KeyStore.loads(data, password)
    except jks.util.KeystoreSignatureException as exc:
        raise KeystoreError("WRONG_PASSWORD", WRONG_PASSWORD) from exc
    except Exception as exc:  # pyjks raises many unrelated types for a corrupt file
        raise KeystoreError("INVALID_KEYSTORE", INVALID_KEYSTORE) from exc
    entries = store.private_keys
    if isinstance(alias, str) and alias:
        entries = {k: v for k, v in entries.items() if k == alias.lower()}
    if not entries:
        raise KeystoreError("INVALID_KEYSTORE", INVALID_KEYSTORE)
    entry = next(iter(entries.values()))
    try:
        if not entry.is_decrypted():
            entry.decrypt(password)
        key = serialization.load_der_private_key(entry.pkey_pkcs8, password=None)
        cert = x509.load_der_x509_certificate(entry.cert_chain[0][1])
    except jks.util.DecryptionFailureException as exc:
        raise KeystoreError("WRONG_PASSWORD", WRONG_PASSWORD) from exc
    except (ValueError, IndexError) as exc:
        raise KeystoreError("INVALID_KEYSTORE", INVALID_KEYSTORE) from exc
    return cert, key


def _read_pem(data: bytes, key_data: bytes, password: str | None) -> tuple[x509.Certificate, Any]:
    try:
        cert = x509.load_pem_x509_certificates(data)[0]
    except (ValueError, IndexError):
        try:
            cert = x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise KeystoreError("INVALID_CERTIFICATE", INVALID_CERTIFICATE) from exc
    secret = password.encode() if password else None
    try:
        key = serialization.load_pem_private_key(key_data, password=secret)
    except TypeError as exc:
        if secret is None:  # an encrypted key and no password
            raise KeystoreError("WRONG_PASSWORD", WRONG_PASSWORD) from exc
        # A password sent along with a plain key is not an error: there is nothing to unlock.
        key = _plain_pem_key(key_data)
    except ValueError as exc:
        if b"ENCRYPTED" in key_data and secret is not None:
            raise KeystoreError("WRONG_PASSWORD", WRONG_PASSWORD) from exc
        raise KeystoreError("INVALID_PRIVATE_KEY", INVALID_PRIVATE_KEY) from exc
    return cert, key


def _plain_pem_key(key_data: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(key_data, password=None)
    except (TypeError, ValueError) as exc:
        raise KeystoreError("INVALID_PRIVATE_KEY", INVALID_PRIVATE_KEY) from exc


def _checked_pair(cert: x509.Certificate, key: Any) -> KeyPair:
    public = cert.public_key()
    if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        raise KeystoreError("UNSUPPORTED_KEY", NOT_RSA)
    if key.public_key().public_numbers() != public.public_numbers():
        raise KeystoreError("KEY_MISMATCH", KEY_MISMATCH)
    return KeyPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
