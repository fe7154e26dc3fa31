"""Opening uploaded keystores: names that would reach keytool's command line on the SEPM host
are refused at pre-flight (issue 11 item 2), and hostile keystores are refused before any
expensive work (issue 11 item 6)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    PrivateFormat,
    pkcs12,
)
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ
from pyasn1_modules import rfc5652, rfc7292, rfc8018

from certificates.domain.keystore import BundleRejected, Upload, open_bundle
from certificates.domain.keystore_limits import MAX_CHAIN, MAX_KDF_ITERATIONS, MAX_KEYSTORE_BYTES
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


# -- hostile keystores (issue 11 item 6) ----------------------------------------------------
# Each crafted file would cost seconds to hours of key derivation, or a pure-Python loop, if it
# were parsed: the refusal must come from reading the structure, before any of that work.
HUGE_ITERATIONS = 50_000_000


def _reencode_pfx(data: bytes, change: Callable[[Any], None]) -> bytes:
    pfx, _rest = der_decoder.decode(data, asn1Spec=rfc7292.PFX())
    change(pfx)
    return bytes(der_encoder.encode(pfx))


def _with_mac_iterations(data: bytes, iterations: int) -> bytes:
    def change(pfx: Any) -> None:
        pfx["macData"]["iterations"] = iterations

    return _reencode_pfx(data, change)


def _with_pbkdf2_iterations(data: bytes, iterations: int) -> bytes:
    """The PBES2 parameters of the encrypted certificate bags, with another iteration count."""

    def change(pfx: Any) -> None:
        octets, _ = der_decoder.decode(pfx["authSafe"]["content"], asn1Spec=univ.OctetString())
        safe, _ = der_decoder.decode(bytes(octets), asn1Spec=rfc7292.AuthenticatedSafe())
        for info in safe:
            if info["contentType"] != rfc5652.id_encryptedData:
                continue
            encrypted, _ = der_decoder.decode(info["content"], asn1Spec=rfc5652.EncryptedData())
            algorithm = encrypted["encryptedContentInfo"]["contentEncryptionAlgorithm"]
            pbes2, _ = der_decoder.decode(algorithm["parameters"], asn1Spec=rfc8018.PBES2_params())
            kdf, _ = der_decoder.decode(
                pbes2["keyDerivationFunc"]["parameters"], asn1Spec=rfc8018.PBKDF2_params()
            )
            kdf["iterationCount"] = iterations
            pbes2["keyDerivationFunc"]["parameters"] = der_encoder.encode(kdf)
            algorithm["parameters"] = der_encoder.encode(pbes2)
            info["content"] = der_encoder.encode(encrypted)
        pfx["authSafe"]["content"] = der_encoder.encode(univ.OctetString(der_encoder.encode(safe)))

    return _reencode_pfx(data, change)


def test_a_pkcs12_mac_with_an_enormous_iteration_count_is_refused_unparsed(
    good: IssuedCertificate,
) -> None:
    data = _with_mac_iterations(good.pkcs12("pw"), HUGE_ITERATIONS)
    problem = refused(Upload("pkcs12", data, "pw"))
    assert problem.code == "excessive_iterations"
    assert f"{HUGE_ITERATIONS:,}" in problem.detail and "MAC" in problem.detail


def test_a_pkcs12_pbkdf2_with_an_enormous_iteration_count_is_refused_unparsed(
    good: IssuedCertificate,
) -> None:
    data = _with_pbkdf2_iterations(good.pkcs12("pw"), HUGE_ITERATIONS)
    problem = refused(Upload("pkcs12", data, "pw"))
    assert problem.code == "excessive_iterations"
    assert "PBKDF2" in problem.detail


def test_generous_iteration_counts_still_open(good: IssuedCertificate) -> None:
    """Windows exports 2000, OpenSSL 2048, Java 10000, cryptography 20000; allow far more."""
    encryption = PrivateFormat.PKCS12.encryption_builder().kdf_rounds(100_000).build(b"pw")
    data = pkcs12.serialize_key_and_certificates(
        b"sepm", good.key, good.certificate, good.chain, encryption
    )
    assert open_bundle(Upload("pkcs12", data, "pw")).certificates[0] == good.certificate


def test_a_jceks_keystore_is_refused_by_its_magic_not_parsed(good: IssuedCertificate) -> None:
    jceks = b"\xce\xce\xce\xce" + good.jks("pw")[4:]
    problem = refused(Upload("jks", jceks, "pw"))
    assert problem.code == "not_jks"
    assert "JCEKS" in problem.detail


def test_a_file_without_the_jks_magic_is_not_a_jks_keystore(good: IssuedCertificate) -> None:
    problem = refused(Upload("jks", good.pkcs12("pw"), "pw"))
    assert problem.code == "not_jks"
    assert "PKCS#12" in problem.detail  # says what it looks like instead


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
def test_a_chain_longer_than_any_real_one_is_refused(good: IssuedCertificate, fmt: str) -> None:
    # Path building checks each pair of certificates: n² signature checks on a long "chain".
    padded = IssuedCertificate(good.certificate, good.key, [*good.chain] * 6)
    if fmt == "pkcs12":
        upload = Upload("pkcs12", padded.pkcs12("pw"), "pw")
    elif fmt == "jks":
        upload = Upload("jks", padded.jks("pw"), "pw")
    else:
        upload = Upload("pem", padded.pem_bundle(), None, padded.key_pem())
    problem = refused(upload)
    assert problem.code == "chain_too_long"
    assert "13 certificates" in problem.detail and f"at most {MAX_CHAIN}" in problem.detail


def test_a_keystore_larger_than_any_real_one_is_refused(good: IssuedCertificate) -> None:
    data = good.pem_bundle() + b"\n" * MAX_KEYSTORE_BYTES
    problem = refused(Upload("pem", data, None, good.key_pem()))
    assert problem.code == "too_large"


def test_an_encrypted_pem_key_with_an_enormous_iteration_count_is_refused_unparsed(
    good: IssuedCertificate,
) -> None:
    encrypted = good.key_pem("pw")
    body = b"".join(encrypted.split(b"\n")[1:-2])
    info, _ = der_decoder.decode(base64.b64decode(body), asn1Spec=rfc7292.EncryptedPrivateKeyInfo())
    algorithm = info["encryptionAlgorithm"]
    pbes2, _ = der_decoder.decode(algorithm["parameters"], asn1Spec=rfc8018.PBES2_params())
    kdf, _ = der_decoder.decode(
        pbes2["keyDerivationFunc"]["parameters"], asn1Spec=rfc8018.PBKDF2_params()
    )
    kdf["iterationCount"] = HUGE_ITERATIONS
    pbes2["keyDerivationFunc"]["parameters"] = der_encoder.encode(kdf)
    algorithm["parameters"] = der_encoder.encode(pbes2)
    crafted = (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + base64.encodebytes(der_encoder.encode(info))
        + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    problem = refused(Upload("pem", good.pem_bundle(), "pw", crafted))
    assert problem.code == "excessive_iterations"
    assert "private key" in problem.detail


def test_the_iteration_cap_holds_to_the_unit(good: IssuedCertificate) -> None:
    """One over the cap is refused; the cap itself is only as expensive as a parse allows."""
    data = _with_mac_iterations(good.pkcs12("pw"), MAX_KDF_ITERATIONS + 1)
    assert refused(Upload("pkcs12", data, "pw")).code == "excessive_iterations"
    at_cap = _with_mac_iterations(good.pkcs12("pw"), MAX_KDF_ITERATIONS)
    # Within the cap it is parsed: the altered MAC no longer verifies, so the password "fails".
    assert refused(Upload("pkcs12", at_cap, "pw")).code == "wrong_password"
