"""Rules of inbound webhook triggers: source names, secrets, freshness, and what a trigger does
to a site that already has rotations (start, answer with one, supersede one, or refuse)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# Standard Webhooks: a delivery older or newer than this (against the receiver's clock) is refused.
TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# `/v1/webhooks/sources` is the admin collection: no source may shadow it.
RESERVED_NAMES = frozenset({"sources"})


class StaleTimestampError(ValueError):
    """webhook-timestamp is missing, unreadable, or outside the tolerance."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_source_name(name: str) -> str | None:
    """Why a source name cannot be used, or None."""
    if not SOURCE_NAME.match(name):
        return "a source name is 1-64 characters: a-z, 0-9, '.', '_', '-', starting alphanumeric"
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved"
    return None


def check_timestamp(header: str | None, now: datetime) -> datetime:
    """The delivery's timestamp, if within the tolerance of `now` (a retried delivery is
    re-signed with a fresh timestamp, so an old one is a replay of a captured request)."""
    try:
        sent = datetime.fromtimestamp(float(header or ""), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        raise StaleTimestampError("webhook-timestamp is missing or not a Unix time") from None
    if sent < now - TOLERANCE:
        raise StaleTimestampError(
            f"webhook-timestamp is {int((now - sent).total_seconds())} s old; the limit is "
            f"{int(TOLERANCE.total_seconds())} s (re-sign a retried delivery)"
        )
    if sent > now + TOLERANCE:
        raise StaleTimestampError("webhook-timestamp is in the future beyond the tolerance")
    return sent


def secret_active(expires_at: datetime | None, now: datetime) -> bool:
    """A rolled secret stays valid until its expiry, so senders can switch without a gap."""
    return expires_at is None or expires_at > now


@dataclass(frozen=True)
class SiteRotation:
    """What the trigger rules need to know about one rotation of the site."""

    rotation_id: str
    fingerprint_sha256: str
    status: str
    swap_started: bool
    created_at: datetime


@dataclass(frozen=True)
class TriggerVerdict:
    action: Literal["start", "duplicate", "supersede", "refuse"]
    # duplicate: the rotation to answer with; supersede: the one to cancel; refuse: the holder.
    rotation_id: str | None = None
    # supersede: rotations that must end before the new one may touch the site.
    wait_for: tuple[str, ...] = ()


_ACTIVE = frozenset({"running", "compensating", "paused"})


def judge_trigger(fingerprint: str, rotations: list[SiteRotation]) -> TriggerVerdict:
    """A trigger for a site, given its certificate's fingerprint and the site's rotations.

    - the same certificate as a rotation going forward, or as the latest completed one (with
      none active): that rotation, nothing new;
    - a rotation past the start of the swap: refuse (only forward recovery is possible, and
      only that rotation may touch the site until it ends);
    - rotations that have not begun the swap: supersede them (the newest one going forward is
      cancelled and compensated) and start the new one once every one of them has ended;
    - otherwise: start."""
    fp = fingerprint.lower()
    active = [r for r in rotations if r.status in _ACTIVE]
    forward = [r for r in active if r.status != "compensating"]
    for r in forward:
        if r.fingerprint_sha256.lower() == fp:
            return TriggerVerdict("duplicate", r.rotation_id)
    completed = sorted(
        (r for r in rotations if r.status == "completed"), key=lambda r: r.created_at
    )
    if not active and completed and completed[-1].fingerprint_sha256.lower() == fp:
        return TriggerVerdict("duplicate", completed[-1].rotation_id)
    for r in active:
        if r.swap_started:
            return TriggerVerdict("refuse", r.rotation_id)
    if active:
        cancel = max(forward, key=lambda r: r.created_at).rotation_id if forward else None
        return TriggerVerdict("supersede", cancel, tuple(r.rotation_id for r in active))
    return TriggerVerdict("start")
