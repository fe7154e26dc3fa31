"""Opening uploaded keystores: names that would reach keytool's command line on the SEPM host
are refused at pre-flight (issue 11 item 2), and hostile keystores are refused before any
expensive work (issue 11 item 6)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from certificates.domain.keystore import BundleRejected, Upload, open_bundle
from tests.support.pki import IssuedCertificate, TestCA

pytestmark = pytest.mark.unit

HOSTILE_ALIASES = ['a\\" -J-Dx=1', 'a" -J-Dx=1', "-J-Djava.class.path=x", "sepm\r\nx", "a,b"]


@pytest.fixture(scope="module")
def good() -> IssuedCertificate:
    return TestCA.root().intermediate().issue(["sepm-a1.corp.example"], days=365)


def refused(upload: Upload) -> BundleRejected:
    with pytest.raises(BundleRejected) as caught:
        open_bundle(upload)
    return caught.value


@pytest.mark.parametrize("alias", HOSTILE_ALIASES)
def test_a_jks_alias_that_could_inject_keytool_options_is_refused(
    good: IssuedCertificate, alias: str
) -> None:
    problem = refused(Upload("jks", good.jks("pw", alias=alias), "pw"))
    assert problem.code == "unsafe_alias"
    assert "alias" in problem.detail and "letters, digits" in problem.detail


@pytest.mark.parametrize("alias", HOSTILE_ALIASES)
def test_a_pkcs12_friendly_name_becomes_keytools_alias_and_is_checked_too(
    good: IssuedCertificate, alias: str
) -> None:
    data = pkcs12.serialize_key_and_certificates(
        alias.encode(), good.key, good.certificate, good.chain, BestAvailableEncryption(b"pw")
    )
    problem = refused(Upload("pkcs12", data, "pw"))
    assert problem.code == "unsafe_alias"


@pytest.mark.parametrize("alias", ["sepm", "Site SEPMA1", "le-2024.corp.example"])
def test_plain_aliases_open(good: IssuedCertificate, alias: str) -> None:
    opened = open_bundle(Upload("jks", good.jks("pw", alias=alias), "pw"))
    assert opened.certificates[0] == good.certificate
    data = pkcs12.serialize_key_and_certificates(
        alias.encode(), good.key, good.certificate, None, BestAvailableEncryption(b"pw")
    )
    assert open_bundle(Upload("pkcs12", data, "pw")).certificates[0] == good.certificate
