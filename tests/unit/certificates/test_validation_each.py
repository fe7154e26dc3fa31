"""One bundle pre-flighted for many sites (a campaign naming one uploaded bundle): opened once,
and each site's verdict the same as its own pre-flight would give."""

from __future__ import annotations

from typing import Any

import pytest

from certificates.domain import validation
from certificates.domain.keystore import BundleRejected, Upload
from certificates.domain.validation import Requirements, validate, validate_each
from tests.support.pki import IssuedCertificate, TestCA, now_utc

pytestmark = pytest.mark.unit

PASSWORD = "Zt7-campaign-bundle-password"


@pytest.fixture(scope="module")
def wildcard() -> IssuedCertificate:
    return TestCA.root().intermediate().issue(["*.corp.example"], days=100)


def pkcs12(cert: IssuedCertificate, password: str = PASSWORD) -> Upload:
    return Upload(format="pkcs12", data=cert.pkcs12(PASSWORD), password=password)


def site(*names: str, min_days: int = 30) -> Requirements:
    return Requirements(hostnames=list(names), min_validity_days=min_days, now=now_utc())


def verdict(outcome: Any) -> Any:
    if isinstance(outcome, BundleRejected):
        return ("rejected", outcome.code, outcome.detail, outcome.extra)
    return ("accepted", outcome)


def alone(upload: Upload, requirements: Requirements) -> Any:
    try:
        return verdict(validate(upload, requirements))
    except BundleRejected as rejected:
        return verdict(rejected)


def test_each_site_gets_the_verdict_its_own_preflight_gives(wildcard: IssuedCertificate) -> None:
    upload = pkcs12(wildcard)
    sites = [
        site("sepm-a1.corp.example", "sepm-a2.corp.example"),
        site("sepm-b1.other.example"),  # not covered by *.corp.example
        site("sepm-c1.corp.example", min_days=200),  # the certificate has 100 days left
        site("sepm-d1.corp.example"),
        site("deep.sepm-e1.corp.example", "10.0.0.9"),
    ]
    together = [verdict(v) for v in validate_each(upload, sites)]
    assert together == [alone(upload, s) for s in sites]
    assert [v[0] if v[0] == "accepted" else v[1] for v in together] == [
        "accepted", "san_missing", "expiring_soon", "accepted", "san_missing",
    ]  # fmt: skip


def test_a_bundle_that_does_not_open_refuses_every_site_as_alone(
    wildcard: IssuedCertificate,
) -> None:
    upload = pkcs12(wildcard, password="not-the-password")
    sites = [site("sepm-a1.corp.example"), site("sepm-b1.corp.example")]
    together = [verdict(v) for v in validate_each(upload, sites)]
    assert together == [alone(upload, s) for s in sites]
    assert {v[1] for v in together} == {"wrong_password"}
    assert PASSWORD not in repr(together)


def test_the_bundle_is_opened_once_for_all_the_sites(
    wildcard: IssuedCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []
    real = validation.open_bundle

    def spy(upload: Upload) -> Any:
        opened.append(upload.format)
        return real(upload)

    monkeypatch.setattr(validation, "open_bundle", spy)
    sites = [site(f"sepm-{i:03d}.corp.example") for i in range(20)]
    outcomes = validate_each(pkcs12(wildcard), sites)
    assert opened == ["pkcs12"]
    assert [getattr(o, "fingerprint_sha256", None) for o in outcomes] == [wildcard.fingerprint] * 20
