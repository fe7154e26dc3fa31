"""Pre-flight: would SEPM accept this bundle, and would every client still reach the servers?

Each check raises BundleRejected with its own code and a reason a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from certificates.domain.hostnames import subject_names, uncovered
from certificates.domain.keystore import (
    BundleRejected,
    OpenedBundle,
    Upload,
    fingerprint,
    open_bundle,
)
from certificates.domain.server_profile import check_digest, check_server_use

MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class Requirements:
    hostnames: list[str]  # every name and address clients use for the site's servers
    min_validity_days: int
    now: datetime


@dataclass(frozen=True)
class ValidatedCertificate:
    fingerprint_sha256: str
    subject: str
    not_after: datetime
    sans: list[str]
    certificate_pem: str
    warnings: list[str] = field(default_factory=list)


def validate(upload: Upload, requirements: Requirements) -> ValidatedCertificate:
    """Open the bundle and check it; raises BundleRejected on the first problem found."""
    return check_opened(open_bundle(upload), requirements)


def validate_each(
    upload: Upload, each: list[Requirements]
) -> list[ValidatedCertificate | BundleRejected]:
    """`validate` for several sites at once, the bundle opened (key derivation, the costly
    part) once: each site's verdict is the one `validate` alone would give it."""
    try:
        bundle = open_bundle(upload)
    except BundleRejected as rejected:
        return [rejected for _ in each]
    verdicts: list[ValidatedCertificate | BundleRejected] = []
    for requirements in each:
        try:
            verdicts.append(check_opened(bundle, requirements))
        except BundleRejected as rejected:
            verdicts.append(rejected)
    return verdicts


def check_opened(bundle: OpenedBundle, requirements: Requirements) -> ValidatedCertificate:
    """The checks of an opened bundle against one site's names and today."""
    _check_key_strength(bundle.private_key)
    leaf, others = _leaf(bundle.certificates, bundle.private_key, ordered=bundle.ordered)
    _check_key_strength(leaf.public_key(), what="the certificate's public key")
    check_server_use(leaf)
    check_digest(leaf)
    path, warnings = _chain(leaf, others, ordered=bundle.ordered)
    for position, cert in enumerate(path):
        _check_validity(cert, requirements, leaf=position == 0)
    names = subject_names(leaf)
    missing = uncovered(names, requirements.hostnames)
    if missing:
        presented = ", ".join(names.as_strings()) or "none (no subjectAltName extension)"
        raise BundleRejected(
            "san_missing",
            f"The certificate's subject alternative names ({presented}) do not cover: "
            f"{', '.join(missing)}. Clients that use these names would refuse the server.",
            missing=missing,
        )
    return ValidatedCertificate(
        fingerprint_sha256=fingerprint(leaf),
        subject=leaf.subject.rfc4514_string(),
        not_after=leaf.not_valid_after_utc,
        sans=names.as_strings(),
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        warnings=warnings,
    )


def _describe(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA {key.key_size}-bit"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"EC ({key.curve.name})"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def _check_key_strength(key: object, *, what: str = "the private key") -> None:
    if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise BundleRejected("weak_key", f"{what} is {_describe(key)}; SEPM accepts RSA keys only")
    if key.key_size < MIN_RSA_BITS:
        raise BundleRejected(
            "weak_key",
            f"{what} is RSA {key.key_size}-bit; at least {MIN_RSA_BITS} bits are required",
        )


def _public_numbers(key: object) -> object:
    return key.public_numbers() if isinstance(key, rsa.RSAPublicKey) else None


def _leaf(
    certs: list[x509.Certificate], key: PrivateKeyTypes, *, ordered: bool
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The certificate the private key belongs to, and the rest."""
    wanted = _public_numbers(key.public_key())
    matching = [i for i, c in enumerate(certs) if _public_numbers(c.public_key()) == wanted]
    if not matching:
        raise BundleRejected(
            "key_mismatch",
            "The private key does not match the certificate "
            f"({certs[0].subject.rfc4514_string()}): they are not a pair",
        )
    index = matching[0]
    if ordered and index != 0:
        raise BundleRejected(
            "chain_order",
            f"The server certificate ({certs[index].subject.rfc4514_string()}) must come "
            f"first, but it is certificate {index + 1} of {len(certs)}",
        )
    return certs[index], [c for i, c in enumerate(certs) if i != index]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _chain(
    leaf: x509.Certificate, others: list[x509.Certificate], *, ordered: bool
) -> tuple[list[x509.Certificate], list[str]]:
    """The issuer path from the leaf through the bundle; gaps, strays and disorder rejected."""
    path, remaining = [leaf], list(others)
    while not _is_root(path[-1]):
        issuer = next((c for c in remaining if _issued_by(path[-1], c)), None)
        if issuer is None:
            break
        path.append(issuer)
        remaining.remove(issuer)
    top = path[-1]
    for cert in path[1:]:
        if not _is_root(cert):
            check_digest(cert)  # a root's own signature is not what clients check
    if not _is_root(top):
        _check_named_issuer(top, remaining)
    if remaining:
        if not _is_root(top):
            raise BundleRejected(
                "chain_incomplete",
                f"The chain is incomplete: {_name(top)} was issued by "
                f"{top.issuer.rfc4514_string()}, which is not in the bundle (it holds "
                f"{'; '.join(_name(c) for c in remaining)} instead)",
            )
        raise BundleRejected(
            "chain_unrelated",
            "The bundle holds certificates that are not in the server certificate's chain: "
            + "; ".join(_name(c) for c in remaining),
        )
    if ordered and others != path[1:]:
        raise BundleRejected(
            "chain_order",
            "The chain is out of order: expected "
            + " → ".join(_name(c) for c in path)
            + ", found "
            + " → ".join(_name(c) for c in [leaf, *others]),
        )
    warnings = []
    if not _is_root(top):
        warnings.append(
            f"The bundle ends at {_name(top)}; its issuer {top.issuer.rfc4514_string()} "
            "is not included, so clients must already trust it"
        )
    return path, warnings


def _is_root(cert: x509.Certificate) -> bool:
    """Self-issued and self-signed. An old root signed with SHA-1 still counts: clients trust
    a root for its key, not for its own signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return True
    return True


def _check_named_issuer(cert: x509.Certificate, candidates: list[x509.Certificate]) -> None:
    """An issuer the bundle holds, by name, whose key does not verify the signature: the
    certificate was altered or signed by another key; not a gap in the chain."""
    named = [c for c in candidates if c.subject == cert.issuer]
    if cert.issuer == cert.subject:
        named.append(cert)
    if not named:
        return
    check_digest(cert)
    for issuer in named:
        try:
            cert.verify_directly_issued_by(issuer)
        except InvalidSignature:
            continue
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return  # not a signature check failure; the chain check explains it
        return
    raise BundleRejected(
        "bad_signature",
        f"The signature of {_name(cert)} does not verify with the key of its issuer "
        f"{cert.issuer.rfc4514_string()}: the certificate was altered or not signed by it",
    )


def _check_validity(cert: x509.Certificate, requirements: Requirements, *, leaf: bool) -> None:
    what = "The certificate" if leaf else f"The chain certificate {_name(cert)}"
    now = requirements.now
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start > now:
        raise BundleRejected(
            "not_yet_valid",
            f"{what} is not valid yet: valid from {start:%Y-%m-%d %H:%M} UTC "
            f"(now {now:%Y-%m-%d %H:%M} UTC)",
        )
    if end <= now:
        raise BundleRejected("expired", f"{what} expired on {end:%Y-%m-%d %H:%M} UTC")
    if end < now + timedelta(days=requirements.min_validity_days):
        days_left = (end - now).days
        raise BundleRejected(
            "expiring_soon",
            f"{what} expires on {end:%Y-%m-%d %H:%M} UTC, in {days_left} days; at least "
            f"{requirements.min_validity_days} days of validity are required",
        )
