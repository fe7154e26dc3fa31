"""The inventory's site policy: trust PEMs are parsed by the TLS stack, and cheaply."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.service_layer.errors import InputRejectedError
from orchestrator.service_layer.site_policy import check_site_policy


def ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp Root CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def spec(*pems: str) -> dict[str, object]:
    return {
        "api_url": "https://sepm-a1.corp.example:8446",
        "trusted_certificates_pem": list(pems),
        "host_ops": {"driver": "winrm", "endpoint": "https://sepm-a1.corp.example:5986"},
    }


def test_a_site_trusting_its_ca_passes_and_a_broken_pem_is_refused_by_position() -> None:
    good = ca_pem()
    check_site_policy(spec(good), rehearsal=False)
    broken = good.replace(good.splitlines()[3], "A" * 64)
    with pytest.raises(InputRejectedError) as refused:
        check_site_policy(spec(good, broken), rehearsal=False)
    assert refused.value.code == "invalid_trust_pem"
    assert "trusted_certificates_pem[1]" in refused.value.detail


def test_checking_a_trust_pem_never_loads_the_systems_ca_store(monkeypatch) -> None:
    # Loading the system store took most of a site registration (50 ms quiet, ~1 s on a loaded
    # machine): an ITSM registering 200 sites waited minutes for it, and the check needs only
    # the PEM it was given.
    def load_default_certs(*_: object, **__: object) -> None:
        raise AssertionError("the system CA store was loaded to check a site's trust PEM")

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", load_default_certs)
    check_site_policy(spec(ca_pem()), rehearsal=False)
