"""Pre-flight validation: every bad certificate kind is rejected with its own code and reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certificates.domain.keystore import BundleFormat, BundleRejected, Upload
from certificates.domain.validation import Requirements, ValidatedCertificate, validate
from tests.support.pki import IssuedCertificate, TestCA, make_key, now_utc

pytestmark = pytest.mark.unit

HOSTS = ["sepm-a1.corp.example", "sepm-a1", "10.0.0.5"]


@pytest.fixture(scope="module")
def root() -> TestCA:
    return TestCA.root()


@pytest.fixture(scope="module")
def issuing(root: TestCA) -> TestCA:
    return root.intermediate()


@pytest.fixture(scope="module")
def good(issuing: TestCA) -> IssuedCertificate:
    return issuing.issue(HOSTS, days=365)


def check(upload: Upload, hosts: list[str] = HOSTS, min_days: int = 30) -> ValidatedCertificate:
    return validate(
        upload, Requirements(hostnames=hosts, min_validity_days=min_days, now=now_utc())
    )


def rejected(upload: Upload, hosts: list[str] = HOSTS, min_days: int = 30) -> BundleRejected:
    with pytest.raises(BundleRejected) as caught:
        check(upload, hosts, min_days)
    return caught.value


def pem(cert: IssuedCertificate, **kw: object) -> Upload:
    return Upload("pem", cert.pem_bundle(), None, cert.key_pem())


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
def test_a_good_bundle_is_accepted_in_every_format(good: IssuedCertificate, fmt: str) -> None:
    if fmt == "pkcs12":
        upload = Upload("pkcs12", good.pkcs12("s3cret"), "s3cret")
    elif fmt == "jks":
        upload = Upload("jks", good.jks("s3cret"), "s3cret")
    else:
        upload = pem(good)
    result = check(upload)
    assert result.fingerprint_sha256 == good.fingerprint
    assert "sepm-a1.corp.example" in result.sans and "10.0.0.5" in result.sans
    assert result.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in result.certificate_pem
    assert result.warnings == []


def test_a_leaf_without_its_issuers_is_accepted_with_a_warning(good: IssuedCertificate) -> None:
    result = check(Upload("pkcs12", good.pkcs12("pw", with_chain=False), "pw"))
    assert result.fingerprint_sha256 == good.fingerprint
    assert "Test Issuing CA" in result.warnings[0]


@pytest.mark.parametrize("fmt", ["pkcs12", "jks"])
def test_wrong_password(good: IssuedCertificate, fmt: BundleFormat) -> None:
    data = good.pkcs12("right") if fmt == "pkcs12" else good.jks("right")
    problem = rejected(Upload(fmt, data, "wrong"))
    assert problem.code == "wrong_password"
    assert "password" in problem.detail


def test_wrong_password_for_an_encrypted_pem_key(good: IssuedCertificate) -> None:
    problem = rejected(Upload("pem", good.pem_bundle(), "wrong", good.key_pem("right")))
    assert problem.code == "wrong_password"
    problem = rejected(Upload("pem", good.pem_bundle(), None, good.key_pem("right")))
    assert problem.code == "wrong_password" and "encrypted" in problem.detail


def test_jks_key_password_different_from_the_store_password(good: IssuedCertificate) -> None:
    problem = rejected(Upload("jks", good.jks("store", key_password="other"), "store"))
    assert problem.code == "wrong_password"
    assert "key password" in problem.detail


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
def test_mismatched_key(issuing: TestCA, good: IssuedCertificate, fmt: str) -> None:
    other = issuing.issue(HOSTS, key_slot=11)
    mixed = IssuedCertificate(good.certificate, other.key, good.chain)
    if fmt == "pem":
        upload = pem(mixed)
    elif fmt == "jks":
        upload = Upload("jks", mixed.jks("pw"), "pw")
    else:
        # cryptography refuses to pair them in one bag; a key beside an unrelated certificate
        # is what such a file holds.
        data = pkcs12.serialize_key_and_certificates(
            b"sepm", other.key, None, [good.certificate], BestAvailableEncryption(b"pw")
        )
        upload = Upload("pkcs12", data, "pw")
    problem = rejected(upload)
    assert problem.code == "key_mismatch"
    assert "does not match" in problem.detail


def test_expired(issuing: TestCA) -> None:
    cert = issuing.issue(HOSTS, not_before=now_utc() - timedelta(days=400), days=365)
    problem = rejected(pem(cert))
    assert problem.code == "expired"
    assert f"{cert.certificate.not_valid_after_utc:%Y-%m-%d}" in problem.detail


def test_not_yet_valid(issuing: TestCA) -> None:
    cert = issuing.issue(HOSTS, not_before=now_utc() + timedelta(days=3), days=365)
    problem = rejected(pem(cert))
    assert problem.code == "not_yet_valid"
    assert "not valid yet" in problem.detail


def test_expiring_within_the_required_days(issuing: TestCA) -> None:
    cert = issuing.issue(HOSTS, days=20)
    problem = rejected(pem(cert), min_days=30)
    assert problem.code == "expiring_soon"
    assert "30 days" in problem.detail
    assert check(pem(cert), min_days=7).fingerprint_sha256 == cert.fingerprint


def test_the_validity_limits_hold_to_the_hour(issuing: TestCA) -> None:
    # An hour either side of each limit: a certificate SEPM clients would reject an hour from
    # now, or one starting an hour from now, must not be installed.
    hour = timedelta(hours=1)
    short = issuing.issue(HOSTS, not_after=now_utc() + timedelta(days=30) - hour)
    assert rejected(pem(short), min_days=30).code == "expiring_soon"
    enough = issuing.issue(HOSTS, not_after=now_utc() + timedelta(days=30) + hour)
    assert check(pem(enough), min_days=30).fingerprint_sha256 == enough.fingerprint
    early = issuing.issue(HOSTS, not_before=now_utc() + hour, days=365)
    assert rejected(pem(early)).code == "not_yet_valid"


def test_1024_bit_key(issuing: TestCA) -> None:
    cert = issuing.issue(HOSTS, key_size=1024)
    problem = rejected(Upload("pkcs12", cert.pkcs12("pw"), "pw"))
    assert problem.code == "weak_key"
    assert "1024" in problem.detail and "2048" in problem.detail


def test_a_non_rsa_key(issuing: TestCA) -> None:
    cert = issuing.issue(HOSTS, key_kind="ec")
    problem = rejected(pem(cert))
    assert problem.code == "weak_key"
    assert "RSA" in problem.detail and "EC" in problem.detail


def test_missing_san_lists_every_name_not_covered(issuing: TestCA) -> None:
    cert = issuing.issue(["sepm-a1.corp.example"])
    problem = rejected(pem(cert))
    assert problem.code == "san_missing"
    assert problem.extra["missing"] == ["sepm-a1", "10.0.0.5"]
    assert "sepm-a1, 10.0.0.5" in problem.detail


def test_a_certificate_without_any_san(issuing: TestCA) -> None:
    cert = issuing.issue(["sepm-a1.corp.example"], with_san=False)
    problem = rejected(pem(cert), hosts=["sepm-a1.corp.example"])
    assert problem.code == "san_missing"
    assert "no subjectAltName" in problem.detail


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
def test_truncated_file(good: IssuedCertificate, fmt: BundleFormat) -> None:
    whole = {"pkcs12": good.pkcs12("pw"), "jks": good.jks("pw"), "pem": good.pem_bundle()}[fmt]
    for cut in (len(whole) // 2, len(whole) - 7):
        upload = Upload(fmt, whole[:cut], "pw", good.key_pem() if fmt == "pem" else None)
        problem = rejected(upload)
        assert problem.code == "corrupt", (fmt, cut, problem.code)


def test_a_truncated_pem_key(good: IssuedCertificate) -> None:
    key = good.key_pem()
    problem = rejected(Upload("pem", good.pem_bundle(), None, key[: len(key) // 2]))
    assert problem.code == "corrupt"
    assert "private key" in problem.detail


def test_garbage_is_an_invalid_keystore() -> None:
    problem = rejected(Upload("pkcs12", b"this is not a keystore", "pw"))
    assert problem.code == "corrupt"
    assert "Invalid keystore file" in problem.detail


def test_a_pem_with_only_a_certificate(good: IssuedCertificate) -> None:
    problem = rejected(Upload("pem", good.cert_pem(), None, None))
    assert problem.code == "no_private_key"
    assert "private key" in problem.detail


def test_a_pem_with_certificate_and_key_in_one_file(good: IssuedCertificate) -> None:
    result = check(Upload("pem", good.pem_bundle() + good.key_pem(), None, None))
    assert result.fingerprint_sha256 == good.fingerprint


def test_chain_out_of_order(good: IssuedCertificate) -> None:
    intermediate, root = good.chain
    reversed_chain = IssuedCertificate(good.certificate, good.key, [root, intermediate])
    problem = rejected(pem(reversed_chain))
    assert problem.code == "chain_order"
    assert "Test Issuing CA" in problem.detail


def test_server_certificate_not_first(good: IssuedCertificate) -> None:
    intermediate, root = good.chain
    data = b"".join(
        IssuedCertificate(c, good.key).cert_pem() for c in (intermediate, good.certificate, root)
    )
    problem = rejected(Upload("pem", data, None, good.key_pem()))
    assert problem.code == "chain_order"
    assert "must come first" in problem.detail


def test_chain_missing_its_intermediate(good: IssuedCertificate) -> None:
    _intermediate, root = good.chain
    gap = IssuedCertificate(good.certificate, good.key, [root])
    for upload in (pem(gap), Upload("pkcs12", gap.pkcs12("pw"), "pw")):
        problem = rejected(upload)
        assert problem.code == "chain_incomplete"
        assert "Test Issuing CA" in problem.detail and "not in the bundle" in problem.detail


def test_a_certificate_from_another_chain(good: IssuedCertificate) -> None:
    stranger = TestCA.root("Unrelated Root", slot=3)
    mixed = IssuedCertificate(good.certificate, good.key, [*good.chain, stranger.certificate])
    problem = rejected(pem(mixed))
    assert problem.code == "chain_unrelated"
    assert "Unrelated Root" in problem.detail


def test_rejections_never_repeat_the_password(good: IssuedCertificate) -> None:
    password = "Tr0ub4dor&3-unique"
    for upload in (
        Upload("pkcs12", good.pkcs12("other"), password),
        Upload("jks", good.jks("other"), password),
        Upload("pkcs12", b"garbage", password),
    ):
        problem = rejected(upload)
        assert password not in str(problem) and password not in repr(problem.extra)
        assert password not in repr(upload)


# -- what is plainly not a TLS server certificate (issue 11, pre-flight gaps) ----------------
def _issue_with(
    issuing: TestCA, *extensions: x509.ExtensionType, ca: bool = False
) -> IssuedCertificate:
    key = make_key("rsa", 2048, 10)
    start = now_utc() - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])]))
        .issuer_name(issuing.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS[:2]]), critical=False
        )
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    cert = builder.sign(issuing.key, hashes.SHA256())
    return IssuedCertificate(cert, key, [issuing.certificate, *issuing.chain])


def _key_usage(**allowed: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    return x509.KeyUsage(**{**flags, **allowed})


def _tampered(cert: IssuedCertificate, *, digest_oid: bytes | None = None) -> IssuedCertificate:
    """The same certificate with its signature damaged, or its signature algorithm renamed."""
    der = cert.certificate.public_bytes(serialization.Encoding.DER)
    if digest_oid is None:
        der = der[:-5] + bytes(b ^ 0xFF for b in der[-5:])
    else:
        sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
        der = der.replace(sha256_rsa, sha256_rsa[:-1] + digest_oid)
    return IssuedCertificate(x509.load_der_x509_certificate(der), cert.key, cert.chain)


def test_a_ca_certificate_is_not_a_server_certificate(issuing: TestCA) -> None:
    problem = rejected(pem(_issue_with(issuing, ca=True)), hosts=HOSTS[:2])
    assert problem.code == "ca_certificate"
    assert "CA:TRUE" in problem.detail


def test_an_extended_key_usage_without_server_auth(issuing: TestCA) -> None:
    client_only = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    problem = rejected(pem(_issue_with(issuing, client_only)), hosts=HOSTS[:2])
    assert problem.code == "eku_not_server_auth"
    assert "serverAuth" in problem.detail and "clientAuth" in problem.detail


def test_an_extended_key_usage_with_server_auth_passes(issuing: TestCA) -> None:
    both = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    usage = _key_usage(digital_signature=True, key_encipherment=True)
    cert = _issue_with(issuing, both, usage)
    assert check(pem(cert), hosts=HOSTS[:2]).fingerprint_sha256 == cert.fingerprint


def test_a_key_usage_that_forbids_tls_server_use(issuing: TestCA) -> None:
    signing_only = _key_usage(key_cert_sign=True, crl_sign=True)
    problem = rejected(pem(_issue_with(issuing, signing_only)), hosts=HOSTS[:2])
    assert problem.code == "key_usage_not_server"
    assert "digitalSignature" in problem.detail and "keyEncipherment" in problem.detail


def test_a_signature_that_does_not_verify(good: IssuedCertificate) -> None:
    problem = rejected(pem(_tampered(good)))
    assert problem.code == "bad_signature"
    assert "Test Issuing CA" in problem.detail


@pytest.mark.parametrize(("oid_tail", "name"), [(b"\x05", "SHA-1"), (b"\x04", "MD5")])
def test_a_weak_digest_is_named(good: IssuedCertificate, oid_tail: bytes, name: str) -> None:
    problem = rejected(pem(_tampered(good, digest_oid=oid_tail)))
    assert problem.code == "weak_digest"
    assert name in problem.detail


def test_a_weak_digest_on_an_intermediate_is_named_too(good: IssuedCertificate) -> None:
    intermediate, root = good.chain
    weak = _tampered(IssuedCertificate(intermediate, good.key), digest_oid=b"\x05")
    problem = rejected(pem(IssuedCertificate(good.certificate, good.key, [weak.certificate, root])))
    assert problem.code == "weak_digest"
    assert "SHA-1" in problem.detail and "Test Issuing CA" in problem.detail


def test_an_old_root_signed_with_sha1_is_still_accepted(good: IssuedCertificate) -> None:
    """Clients trust a root for its key; its own signature's digest is not checked."""
    intermediate, root = good.chain
    old_root = _tampered(IssuedCertificate(root, good.key), digest_oid=b"\x05").certificate
    bundle = IssuedCertificate(good.certificate, good.key, [intermediate, old_root])
    assert check(pem(bundle)).fingerprint_sha256 == good.fingerprint
