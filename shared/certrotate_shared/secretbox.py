"""Secrets at rest: AES-GCM under the master key, bound to where each blob belongs."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretBoxError(ValueError):
    """A blob could not be opened: wrong key, or it was moved or tampered with."""


class SecretBox:
    """Seal and open secrets; `context` (e.g. the row's reference) is authenticated, not stored."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("SecretBox needs a 32-byte key")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypt; the result is nonce || ciphertext+tag."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        """Decrypt a sealed blob for the same context."""
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context.encode())
        except (InvalidTag, ValueError):
            raise SecretBoxError("secret cannot be opened with this master key") from None

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def generate_master_key() -> str:
    """A new master key, base64 (urlsafe) of 32 random bytes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
