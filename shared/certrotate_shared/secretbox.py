"""Secrets at rest: AES-GCM under a key derived from the master key (HKDF), bound to where each
blob belongs, and marked with the id of the master key that sealed it.

A sealed blob is `0x02 || key id (4 bytes) || nonce (12) || ciphertext+tag`. The key id lets a
master key be rotated: the new key seals, the previous ones (settings) still open what they
sealed until `certrotate vault rekey` has sealed it again under the new one. Blobs written
before key ids existed (`nonce || ciphertext+tag`, under the raw master key) stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x02"
KEY_ID_BYTES = 4
# One purpose per derived key: a key that seals is never the one that fingerprints requests.
SEALING = b"certrotate/v1/sealing"
IDEMPOTENCY = b"certrotate/v1/idempotency-fingerprint"
KEY_ID = b"certrotate/v1/key-id"


class SecretBoxError(ValueError):
    """A blob could not be opened: wrong key, or it was moved or tampered with."""


def derive_key(master: bytes, purpose: bytes, length: int = 32) -> bytes:
    """A key for one purpose, derived from the master key with HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(master)


def key_id(master: bytes) -> str:
    """The public id of a master key (8 hex digits), stored with every value it seals."""
    return derive_key(master, KEY_ID, KEY_ID_BYTES).hex()


class SecretBox:
    """Seal and open secrets; `context` (e.g. the row's reference) is authenticated, not stored.
    `previous` master keys open what they sealed; only `key` seals."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        for k in (key, *previous):
            if len(k) != 32:
                raise ValueError("SecretBox needs 32-byte keys")
        self._kid = bytes.fromhex(key_id(key))
        self._sealer = AESGCM(derive_key(key, SEALING))
        masters = [key, *previous]
        self._openers = {bytes.fromhex(key_id(m)): AESGCM(derive_key(m, SEALING)) for m in masters}
        self._legacy = [AESGCM(m) for m in masters]

    @property
    def key_id(self) -> str:
        return self._kid.hex()

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return (
            VERSION + self._kid + nonce + self._sealer.encrypt(nonce, plaintext, context.encode())
        )

    def open(self, blob: bytes, context: str) -> bytes:
        """Decrypt a sealed blob for the same context, under whichever known key sealed it."""
        aad = context.encode()
        head = len(VERSION) + KEY_ID_BYTES
        if blob[:1] == VERSION and (aead := self._openers.get(blob[1:head])) is not None:
            try:
                return aead.decrypt(blob[head : head + 12], blob[head + 12 :], aad)
            except (InvalidTag, ValueError):
                pass  # a legacy blob whose nonce happens to look like a header
        for legacy in self._legacy:
            try:
                return legacy.decrypt(blob[:12], blob[12:], aad)
            except (InvalidTag, ValueError):
                continue
        raise SecretBoxError("secret cannot be opened with this master key (or a previous one)")

    def sealed_by_current(self, blob: bytes) -> bool:
        """Whether `blob` is already sealed under the current key (rekey skips it)."""
        return blob[:1] == VERSION and blob[1 : 1 + KEY_ID_BYTES] == self._kid

    def __repr__(self) -> str:
        return f"SecretBox(key id {self.key_id})"


def request_fingerprint(master: bytes, canonical: bytes) -> str:
    """A keyed hash of a request (it may hold a password: a plain hash could be brute-forced),
    under the key derived for this purpose."""
    return hmac.new(derive_key(master, IDEMPOTENCY), canonical, hashlib.sha256).hexdigest()


def fingerprints_accepted(master: bytes, previous: Sequence[bytes], canonical: bytes) -> list[str]:
    """Every fingerprint a stored request may carry: under the current and previous keys, and
    the form used before keys were derived (the raw master key)."""
    found = []
    for m in (master, *previous):
        found.append(request_fingerprint(m, canonical))
        found.append(hmac.new(m, canonical, hashlib.sha256).hexdigest())
    return found


def generate_master_key() -> str:
    """A new master key, base64 (urlsafe) of 32 random bytes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
