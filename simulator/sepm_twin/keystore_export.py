"""Writing a key pair as the files an administrator would hand SEPM (PKCS#12, JKS, PEM).

Used by the twin's CA issue endpoint, and by tests that install certificates.
"""

from __future__ import annotations

import base64
from typing import Any

import jks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sepm_twin.certificates import KeyPair


def to_pkcs12(pair: KeyPair, password: str) -> bytes:
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    return pkcs12.serialize_key_and_certificates(
        b"sepm",
        key,  # type: ignore[arg-type]
        pair.certificate,
        None,
        serialization.BestAvailableEncryption(password.encode()),
    )


def to_jks(pair: KeyPair, password: str, alias: str = "sepm") -> bytes:
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_der = pair.certificate.public_bytes(serialization.Encoding.DER)
    entry = jks.PrivateKeyEntry.new(alias, [cert_der], pkcs8, "pkcs8")
    data: bytes = jks.KeyStore.new("jks", [entry]).saves(password)
    return data


def install_body(pair: KeyPair, fmt: str, password: str = "changeit") -> dict[str, Any]:  # noqa: S107
    """The host agent's install body for a pair in the given format."""
    if fmt == "pkcs12":
        return {"format": fmt, "data_b64": _b64(to_pkcs12(pair, password)), "password": password}
    if fmt == "jks":
        return {"format": fmt, "data_b64": _b64(to_jks(pair, password)), "password": password}
    if fmt == "pem":
        return {
            "format": fmt,
            "data_b64": _b64(pair.certificate_pem),
            "key_b64": _b64(pair.key_pem),
        }
    raise ValueError(f"unknown format {fmt!r}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
