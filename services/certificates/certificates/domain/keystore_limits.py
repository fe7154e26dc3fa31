"""Bounds on the work an uploaded keystore can cause, checked before it is parsed.

A keystore names its own cost: a PKCS#12 file carries the iteration counts of its MAC and of
each password-based encryption, a JCEKS file those of its sealed keys (decrypted by a
pure-Python loop), and any bundle as many certificates as it likes (path building compares
them pairwise). Key derivation holds the GIL, so one crafted upload would freeze the whole
embedded process. Reading the structure first is cheap and bounded by the size cap; everything
expensive happens only within the caps below, which real keystores stay far below.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, univ
from pyasn1_modules import rfc5652, rfc7292, rfc8018

from certificates.domain.rejections import INVALID_KEYSTORE, BundleRejected

# A server keystore is a key and a few certificates: a few KiB. Reading the structure is linear
# in size: 0.25 s of CPU for a crafted file of this size (13,000 empty PKCS#12 bags) here.
MAX_KEYSTORE_BYTES = 128 * 1024
# Windows exports 2000 iterations, OpenSSL 2048, Java 10000, cryptography 20000 (PBKDF2).
# Loading holds the GIL (measured: the whole process stands still through load_pkcs12); one
# PBKDF2-SHA256 run of 200,000 iterations takes 0.09 s here, so the worst file within these
# caps stops the process for about 0.6 s.
MAX_KDF_ITERATIONS = 200_000
# Key derivations one file may ask for: the MAC, the key bag, the certificate bags.
MAX_KDF_RUNS = 6
# Leaf, intermediates, root: real chains have 2-4 certificates.
MAX_CHAIN = 10
MAX_BAGS = 32

JKS_MAGIC = b"\xfe\xed\xfe\xed"
JCEKS_MAGIC = b"\xce\xce\xce\xce"


def check_size(data: bytes) -> None:
    if len(data) > MAX_KEYSTORE_BYTES:
        raise BundleRejected(
            "too_large",
            f"{INVALID_KEYSTORE}: {len(data):,} bytes; a server certificate bundle is a few KiB "
            f"and at most {MAX_KEYSTORE_BYTES:,} bytes are accepted",
        )


def check_chain_length(count: int) -> None:
    if count > MAX_CHAIN:
        raise BundleRejected(
            "chain_too_long",
            f"The bundle holds {count} certificates; a server certificate's chain has at most "
            f"{MAX_CHAIN} (leaf, intermediates, root)",
        )


def check_jks_header(data: bytes) -> None:
    """Only a real JKS (0xFEEDFEED); JCEKS is refused before its sealed keys are touched."""
    if data.startswith(JKS_MAGIC):
        entries = int.from_bytes(data[8:12], "big")
        if entries > MAX_BAGS:
            raise BundleRejected(
                "too_many_entries",
                f"{INVALID_KEYSTORE}: the JKS file declares {entries:,} entries; at most "
                f"{MAX_BAGS} are accepted",
            )
        return
    if data.startswith(JCEKS_MAGIC):
        raise BundleRejected(
            "not_jks",
            "This is a JCEKS keystore, not JKS; SEPM's Tomcat reads JKS. Convert it with "
            "keytool -importkeystore -deststoretype JKS, or upload a PKCS#12 file",
        )
    looks_like = (
        " (it looks like a PKCS#12 file: upload it as pkcs12)" if data[:1] == b"\x30" else ""
    )
    raise BundleRejected(
        "not_jks", f"{INVALID_KEYSTORE}: the file is not a JKS keystore{looks_like}"
    )


def check_encrypted_pem_key(key_data: bytes) -> None:
    """An encrypted PKCS#8 PEM key names its PBKDF2 iteration count too."""
    begin, end = b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"-----END ENCRYPTED PRIVATE KEY-----"
    start = key_data.find(begin)
    stop = key_data.find(end, start + 1)
    if start < 0 or stop < 0:
        return  # unencrypted, or the legacy OpenSSL form (one MD5 round)
    try:
        der = base64.b64decode(b"".join(key_data[start + len(begin) : stop].split()))
        info = _decode(der, rfc7292.EncryptedPrivateKeyInfo())
    except (PyAsn1Error, ValueError, TypeError):  # binascii.Error is a ValueError
        return  # the key parser says how it is damaged
    _check_algorithm(Pkcs12Shape(), info["encryptionAlgorithm"], "the private key")


@dataclass
class Pkcs12Shape:
    """What a PKCS#12 file says about itself before anything is decrypted."""

    key_names: list[str] = field(default_factory=list)  # friendlyName of the key bags
    kdf_runs: int = 0


def inspect_pkcs12(data: bytes) -> Pkcs12Shape | None:
    """The file's shape, refusing excessive iteration counts; None if it does not decode (the
    parser then says how it is damaged)."""
    try:
        return _inspect(data)
    except BundleRejected:
        raise
    except (PyAsn1Error, ValueError, TypeError, KeyError):
        return None


def _inspect(data: bytes) -> Pkcs12Shape | None:
    pfx, rest = der_decoder.decode(data, asn1Spec=rfc7292.PFX())
    if rest:
        return None
    shape = Pkcs12Shape()
    mac = pfx["macData"]
    if mac.isValue:
        _count(shape, int(mac["iterations"]), "the MAC (PKCS#12 key derivation)")
    if pfx["authSafe"]["contentType"] != rfc5652.id_data:
        return None  # public-key integrity mode: the parser refuses it as unsupported
    safe = _decode(_octets(pfx["authSafe"]["content"]), rfc7292.AuthenticatedSafe())
    bags = 0
    for info in safe:
        kind = info["contentType"]
        if kind == rfc5652.id_encryptedData:
            encrypted = _decode(info["content"], rfc5652.EncryptedData())
            _check_algorithm(
                shape,
                encrypted["encryptedContentInfo"]["contentEncryptionAlgorithm"],
                "certificates",
            )
        elif kind == rfc5652.id_data:
            for bag in _bags(_decode(_octets(info["content"]), rfc7292.SafeContents()), depth=0):
                bags += 1
                if bags > MAX_BAGS:
                    raise BundleRejected(
                        "too_many_entries",
                        f"{INVALID_KEYSTORE}: more than {MAX_BAGS} entries in the PKCS#12 file",
                    )
                _read_bag(shape, bag)
    return shape


def _read_bag(shape: Pkcs12Shape, bag: Any) -> None:
    if bag["bagId"] not in (rfc7292.id_pkcs8ShroudedKeyBag, rfc7292.id_keyBag):
        return
    shape.key_names.extend(_friendly_names(bag))
    if bag["bagId"] == rfc7292.id_pkcs8ShroudedKeyBag:
        shrouded = _decode(bag["bagValue"], rfc7292.EncryptedPrivateKeyInfo())
        _check_algorithm(shape, shrouded["encryptionAlgorithm"], "the private key")


def _bags(contents: Any, *, depth: int) -> Iterator[Any]:
    for bag in contents:
        if bag["bagId"] == rfc7292.id_safeContentsBag:
            if depth >= 2:
                raise BundleRejected(
                    "corrupt", f"{INVALID_KEYSTORE}: PKCS#12 safe contents nested too deep"
                )
            yield from _bags(_decode(bag["bagValue"], rfc7292.SafeContents()), depth=depth + 1)
        else:
            yield bag


def _friendly_names(bag: Any) -> list[str]:
    names = []
    for attribute in bag["bagAttributes"]:
        if attribute["attrType"] == rfc7292.pkcs_9_at_friendlyName:
            names += [str(_decode(value, char.BMPString())) for value in attribute["attrValues"]]
    return names


def _check_algorithm(shape: Pkcs12Shape, algorithm: Any, what: str) -> None:
    oid = algorithm["algorithm"]
    if oid == rfc8018.id_PBES2:
        pbes2 = _decode(algorithm["parameters"], rfc8018.PBES2_params())
        kdf = pbes2["keyDerivationFunc"]
        if kdf["algorithm"] == rfc8018.id_PBKDF2:
            params = _decode(kdf["parameters"], rfc8018.PBKDF2_params())
            _count(shape, int(params["iterationCount"]), f"the PBKDF2 protecting {what}")
    elif oid in rfc7292.pkcs_12PbeIds:
        params = _decode(algorithm["parameters"], rfc7292.Pkcs_12PbeParams())
        _count(shape, int(params["iterations"]), f"the PKCS#12 encryption of {what}")
    # Any other scheme: the parser refuses it as unsupported, with no key derivation.


def _count(shape: Pkcs12Shape, iterations: int, what: str) -> None:
    if iterations > MAX_KDF_ITERATIONS:
        raise BundleRejected(
            "excessive_iterations",
            f"{INVALID_KEYSTORE}: {what} asks for {iterations:,} iterations; at most "
            f"{MAX_KDF_ITERATIONS:,} are accepted (exports use 2,000 to 100,000); export it again "
            "with the tool's default protection",
        )
    shape.kdf_runs += 1
    if shape.kdf_runs > MAX_KDF_RUNS:
        raise BundleRejected(
            "excessive_iterations",
            f"{INVALID_KEYSTORE}: the PKCS#12 file asks for more than {MAX_KDF_RUNS} key "
            "derivations (one MAC, one key, a few certificate bags are expected)",
        )


def _octets(value: Any) -> bytes:
    return bytes(_decode(value, univ.OctetString()))


def _decode(value: Any, spec: Any) -> Any:
    decoded, _rest = der_decoder.decode(bytes(value), asn1Spec=spec)
    return decoded
