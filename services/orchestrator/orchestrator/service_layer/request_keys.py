"""Idempotency-Key requests (rotations, campaigns): the same key must come with the same
request, which is remembered by a keyed fingerprint, never in clear (it holds a password)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from certrotate_shared import secretbox
from certrotate_shared.settings import ServiceSettings


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def request_fingerprint(settings: ServiceSettings, body: dict[str, Any]) -> str:
    """A keyed hash of the request (it holds a password: a plain hash could be brute-forced),
    under the key derived for fingerprints, never the sealing key."""
    return secretbox.request_fingerprint(settings.master_key_bytes(), _canonical(body))


def same_request(settings: ServiceSettings, body: dict[str, Any], stored: str | None) -> bool:
    """Whether a stored fingerprint is this request's, under the current master key, a previous
    one, or the raw key older records were hashed with."""
    accepted = secretbox.fingerprints_accepted(
        settings.master_key_bytes(), settings.previous_master_key_bytes(), _canonical(body)
    )
    return any(hmac.compare_digest(stored or "", f) for f in accepted)
