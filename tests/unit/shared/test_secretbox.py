"""Key hygiene (issue 11, Low): separate keys derived with HKDF for sealing and for request
fingerprints, a key id with every sealed value, master keys that can be rotated, and values
sealed before all this still readable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certrotate_shared.secretbox import (
    SecretBox,
    SecretBoxError,
    fingerprints_accepted,
    generate_master_key,
    key_id,
    request_fingerprint,
)
from certrotate_shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

OLD, NEW = os.urandom(32), os.urandom(32)


def legacy_seal(master: bytes, plaintext: bytes, context: str) -> bytes:
    """How values were sealed before key ids: the raw master key, nonce || ciphertext."""
    nonce = os.urandom(12)
    return nonce + AESGCM(master).encrypt(nonce, plaintext, context.encode())


def test_the_sealing_key_is_derived_and_each_value_names_its_key():
    blob = SecretBox(NEW).seal(b"sepm-password", "site/a")
    assert blob[1:5].hex() == key_id(NEW) == SecretBox(NEW).key_id
    # Not the master key itself: the master key alone cannot open it.
    with pytest.raises(InvalidTag):
        AESGCM(NEW).decrypt(blob[5:17], blob[17:], b"site/a")
    assert SecretBox(NEW).open(blob, "site/a") == b"sepm-password"
    with pytest.raises(SecretBoxError):
        SecretBox(NEW).open(blob, "site/b")  # bound to where it belongs


def test_values_sealed_before_key_ids_stay_readable():
    old_blob = legacy_seal(OLD, b"winrm-password", "site/a/winrm")
    assert SecretBox(OLD).open(old_blob, "site/a/winrm") == b"winrm-password"
    assert SecretBox(NEW, [OLD]).open(old_blob, "site/a/winrm") == b"winrm-password"
    assert not SecretBox(OLD).sealed_by_current(old_blob)


def test_a_rotated_master_key_keeps_old_values_readable_until_they_are_sealed_again():
    sealed_before = SecretBox(OLD).seal(b"keystore-pass", "bundle:bnd_1")
    rotated = SecretBox(NEW, [OLD])
    assert rotated.open(sealed_before, "bundle:bnd_1") == b"keystore-pass"
    assert not rotated.sealed_by_current(sealed_before)
    with pytest.raises(SecretBoxError):
        SecretBox(NEW).open(sealed_before, "bundle:bnd_1")  # once the old key is dropped
    again = rotated.seal(rotated.open(sealed_before, "bundle:bnd_1"), "bundle:bnd_1")
    assert rotated.sealed_by_current(again)
    assert SecretBox(NEW).open(again, "bundle:bnd_1") == b"keystore-pass"


def test_request_fingerprints_use_their_own_key_and_old_ones_still_match():
    body = b'{"certificate":{"password":"pfx-pass"},"site":"a"}'
    mine = request_fingerprint(NEW, body)
    raw = hmac.new(NEW, body, hashlib.sha256).hexdigest()
    assert mine != raw  # not keyed by the master key itself
    accepted = fingerprints_accepted(NEW, [OLD], body)
    assert mine == accepted[0]
    assert raw in accepted  # stored before keys were derived
    assert request_fingerprint(OLD, body) in accepted  # stored under the previous key
    assert request_fingerprint(NEW, body + b" ") not in accepted


def test_previous_master_keys_are_checked_like_the_master_key(monkeypatch):
    good = generate_master_key()
    settings = ServiceSettings(master_key=good, previous_master_keys=[generate_master_key()])
    assert len(settings.previous_master_key_bytes()) == 1
    short = base64.urlsafe_b64encode(b"x" * 16).decode()
    with pytest.raises(ValueError, match="32 bytes") as refused:
        ServiceSettings(master_key=good, previous_master_keys=[short])
    assert short not in str(refused.value)
