"""The secret scan itself: it must find a secret in every encoding the suite promises, and stay
quiet on logs that hold none (else the suite's green means nothing, or it cries wolf)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.secret_scan import SecretScan
from tests.support.pki import TestCA

pytestmark = pytest.mark.unit

PASSWORD = "Keystore-Pass-1"


@pytest.fixture
def scan_with_a_keystore() -> tuple[SecretScan, bytes, bytes]:
    leaf = TestCA.root().issue(["sepm-a1.corp.example"])
    bundle = leaf.pkcs12(PASSWORD)
    scan = SecretScan()
    body = {"certificate": {"format": "pkcs12", "data_b64": base64.b64encode(bundle).decode(),
                            "password": PASSWORD},
            "sepm_credentials": {"username": "svc", "password": "Twin-Pass-2026!"}}  # fmt: skip
    scan.request_body(json.dumps(body).encode(), "POST /v1/rotations")
    key_pem = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return scan, bundle, key_pem


def _found(scan: SecretScan, text: str) -> set[str]:
    scan.texts = [("log", text)]
    return {f.secret for f in scan.findings()}


@pytest.mark.parametrize(
    "leak",
    [
        lambda pw: f"connecting with password={pw}",
        lambda pw: f"body: {quote(pw, safe='')}",
        lambda pw: json.dumps({"message": json.dumps({"pw": pw})}),
        lambda pw: f"hex {pw.encode().hex()}",
        # Inside a larger base64 blob, at each of the three byte offsets.
        lambda pw: base64.b64encode(b"user:" + pw.encode()).decode(),
        lambda pw: base64.b64encode(b"u:" + pw.encode()).decode(),
        lambda pw: base64.b64encode(b"ux:" + pw.encode()).decode(),
        lambda pw: base64.urlsafe_b64encode(pw.encode()).decode(),
    ],
)
def test_a_password_is_found_in_every_encoding(scan_with_a_keystore, leak):
    scan, _, _ = scan_with_a_keystore
    assert any("password" in name for name in _found(scan, leak("Twin-Pass-2026!")))
    assert any("password" in name for name in _found(scan, leak(PASSWORD)))


def test_a_keystore_and_its_private_key_are_found_whole_or_in_part(scan_with_a_keystore):
    scan, bundle, key_pem = scan_with_a_keystore
    assert any("keystore" in s for s in _found(scan, base64.b64encode(bundle).decode()))
    assert any("keystore" in s for s in _found(scan, bundle[200:260].hex()))
    # The private key inside the PKCS#12, as PEM in a log line (escaped JSON too).
    assert any("private key" in s for s in _found(scan, key_pem.decode()))
    assert any("private key" in s for s in _found(scan, json.dumps({"k": key_pem.decode()})))
    der = base64.b64decode(b"".join(key_pem.splitlines()[1:-1]))
    assert any("private key" in s for s in _found(scan, der[300:340].hex()))


def test_a_clean_log_and_public_material_find_nothing(scan_with_a_keystore, tmp_path: Path):
    scan, _, _ = scan_with_a_keystore
    other = TestCA.root().issue(["elsewhere.corp.example"], key_slot=11)
    public = other.certificate.public_bytes(serialization.Encoding.PEM).decode()
    other_key = other.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    log = tmp_path / "svc" / "certificates.log"
    log.parent.mkdir()
    log.write_text(
        "2026-11-30 INFO certificates: installed on sepm-a1 (password=[REDACTED])\n"
        + public
        + other_key  # another key (same kind, same size) is not this test's key
    )
    scan.log_dir(tmp_path)
    assert scan.findings() == []
    log.write_text(log.read_text() + f"oops {PASSWORD}\n")
    [finding] = scan.findings()
    assert finding.source == str(log) and finding.line == log.read_text().count("\n")
    assert PASSWORD not in str(finding)
