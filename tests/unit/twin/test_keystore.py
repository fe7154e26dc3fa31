"""Reading certificates to install, with SEPM's messages for what it refuses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from sepm_twin.certificates import CertificateAuthority, KeyPair
from sepm_twin.keystore import (
    INVALID_CERTIFICATE,
    INVALID_KEYSTORE,
    INVALID_PRIVATE_KEY,
    KEY_MISMATCH,
    WRONG_PASSWORD,
    KeystoreError,
    read_install_request,
)
from sepm_twin.keystore_export import install_body

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def pairs() -> tuple[KeyPair, KeyPair]:
    ca = CertificateAuthority(now=datetime.now(UTC))
    one = ca.issue_server_certificate(common_name="a", hostnames=["a.example"], key_index=1)
    two = ca.issue_server_certificate(common_name="b", hostnames=["b.example"], key_index=2)
    return one, two


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
def test_each_format_installs_the_same_certificate(
    fmt: str, pairs: tuple[KeyPair, KeyPair]
) -> None:
    pair = pairs[0]
    read = read_install_request(install_body(pair, fmt, "s3cret"))
    assert read.fingerprint_sha256 == pair.fingerprint_sha256


@pytest.mark.parametrize("fmt", ["pkcs12", "jks"])
def test_a_wrong_keystore_password_is_refused(fmt: str, pairs: tuple[KeyPair, KeyPair]) -> None:
    body = install_body(pairs[0], fmt, "right") | {"password": "wrong"}
    with pytest.raises(KeystoreError) as caught:
        read_install_request(body)
    assert caught.value.message == WRONG_PASSWORD


@pytest.mark.parametrize("fmt", ["pkcs12", "jks"])
def test_a_corrupt_keystore_is_refused(fmt: str, pairs: tuple[KeyPair, KeyPair]) -> None:
    body = install_body(pairs[0], fmt, "pw")
    raw = base64.b64decode(body["data_b64"])
    body["data_b64"] = base64.b64encode(raw[: len(raw) // 2]).decode()
    with pytest.raises(KeystoreError) as caught:
        read_install_request(body)
    assert caught.value.message == INVALID_KEYSTORE


def test_a_key_that_does_not_match_the_certificate_is_refused(
    pairs: tuple[KeyPair, KeyPair],
) -> None:
    body = install_body(pairs[0], "pem") | {"key_b64": install_body(pairs[1], "pem")["key_b64"]}
    with pytest.raises(KeystoreError) as caught:
        read_install_request(body)
    assert caught.value.message == KEY_MISMATCH


def test_an_unreadable_private_key_is_refused(pairs: tuple[KeyPair, KeyPair]) -> None:
    body = install_body(pairs[0], "pem") | {"key_b64": base64.b64encode(b"nonsense").decode()}
    with pytest.raises(KeystoreError) as caught:
        read_install_request(body)
    assert caught.value.message == INVALID_PRIVATE_KEY


def test_an_unreadable_certificate_is_refused(pairs: tuple[KeyPair, KeyPair]) -> None:
    body = install_body(pairs[0], "pem") | {"data_b64": base64.b64encode(b"garbage").decode()}
    with pytest.raises(KeystoreError) as caught:
        read_install_request(body)
    assert caught.value.message == INVALID_CERTIFICATE


def test_garbage_that_is_not_base64_is_an_invalid_keystore() -> None:
    with pytest.raises(KeystoreError) as caught:
        read_install_request({"format": "pkcs12", "data_b64": "@@@", "password": "x"})
    assert caught.value.message == INVALID_KEYSTORE


def test_an_encrypted_pem_key_needs_its_password(pairs: tuple[KeyPair, KeyPair]) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pairs[0].key_pem, password=None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"open-sesame"),
    )
    body = install_body(pairs[0], "pem") | {"key_b64": base64.b64encode(locked).decode()}
    assert read_install_request(body | {"password": "open-sesame"}).fingerprint_sha256 == (
        pairs[0].fingerprint_sha256
    )
    for wrong in ({"password": "nope"}, {}):
        with pytest.raises(KeystoreError) as caught:
            read_install_request(body | wrong)
        assert caught.value.message == WRONG_PASSWORD
    # A password with a plain key is harmless.
    plain = install_body(pairs[0], "pem") | {"password": "whatever"}
    assert read_install_request(plain).fingerprint_sha256 == pairs[0].fingerprint_sha256
