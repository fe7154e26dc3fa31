"""Rules of outbound callbacks: which rotation changes are worth telling an ITSM tool, who
subscribed to them, when a failed delivery is tried again, and which addresses may be called."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.domain.state import SagaState

EventType = Literal[
    "rotation.paused",
    "rotation.awaiting_approval",
    "rotation.completed",
    "rotation.compensated",
    "rotation.failed",
    "exposure.exceeded",
    "site.at_risk",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "rotation.paused",
    "rotation.awaiting_approval",
    "rotation.completed",
    "rotation.compensated",
    "rotation.failed",
    "exposure.exceeded",
    "site.at_risk",
)


@dataclass(frozen=True)
class Marks:
    """The parts of a rotation's state whose change a subscriber hears about."""

    status: str
    awaiting_approval: bool
    pending_kind: str | None
    exposure_alerted: bool
    site_changed: bool  # verification off or replication broken right now


def events_between(before: Marks | None, after: Marks) -> list[EventType]:
    """What happened in one transition, in the order a reader would tell it."""
    happened: list[EventType] = []
    was = before or Marks("new", False, None, False, False)
    if after.awaiting_approval and not was.awaiting_approval:
        happened.append("rotation.awaiting_approval")
    if after.status == "paused" and (
        was.status != "paused" or was.pending_kind != after.pending_kind
    ):
        happened.append("rotation.paused")
    if after.pending_kind == "orphan_risk" and was.pending_kind != "orphan_risk":
        happened.append("site.at_risk")  # clients would be cut off by the swap
    if after.exposure_alerted and not was.exposure_alerted:
        happened.append("exposure.exceeded")
    if after.status != was.status and after.status in ("completed", "compensated", "failed"):
        happened.append(f"rotation.{after.status}")  # type: ignore[arg-type]
        if after.status == "failed" and after.site_changed:
            happened.append("site.at_risk")  # left half-changed: a person must look now
    return happened


@dataclass(frozen=True)
class Subscriber:
    subscription_id: str
    event_types: frozenset[str]
    site: str | None
    change_id: str | None

    def wants(self, event: str, *, site: str, change_id: str | None) -> bool:
        return (
            event in self.event_types
            and (self.site is None or self.site == site)
            and (self.change_id is None or self.change_id == change_id)
        )


def retry_at(
    *, attempts: int, now: datetime, first_at: datetime, base: float, cap: float, window: float
) -> datetime | None:
    """When to try a failed delivery again (exponential back-off with jitter), or None once
    `window` seconds have passed since its first attempt: then it is failed for good."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    delay *= 0.8 + 0.4 * random.random()  # jitter: receivers back up are not hit in lockstep
    when = now + timedelta(seconds=delay)
    if (now - first_at).total_seconds() >= window:
        return None
    return min(when, first_at + timedelta(seconds=window))


class AddressRefusedError(ValueError):
    """The callback URL points somewhere certrotate must not call."""


# Beyond is_private/is_loopback/...: the cloud metadata services (AWS, GCP, Azure; Alibaba).
_METADATA = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("100.100.100.200/32"),
             ipaddress.ip_network("fd00:ec2::254/128"))  # fmt: skip


def refused_because(
    address: str, allowed: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    """Why an address must not receive callbacks (None: it may), unless an allowed network
    holds it."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return None
    if any(ip in net for net in _METADATA):
        return "a cloud metadata address"
    for test, what in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return what
    return None


def check_url(url: str, *, allow_http: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a callback URL that may be called, before name resolution."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise AddressRefusedError("a callback URL must use https")
    if not parts.hostname:
        raise AddressRefusedError("a callback URL needs a host")
    if parts.username or parts.password:
        raise AddressRefusedError("a callback URL must not carry credentials")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise AddressRefusedError("the callback URL's port is not a number") from None
    return scheme, parts.hostname, port


def marks_of(state: SagaState) -> Marks:
    """The parts of a saga's state a subscriber hears about, read before and after a change."""
    return Marks(
        status=state.status,
        awaiting_approval="approval" in state.gate_waiting_for,
        pending_kind=state.pending_decision.kind if state.pending_decision else None,
        exposure_alerted=state.exposure_alert is not None,
        site_changed=(state.verification_touched and state.verification_restored_at is None)
        or bool(state.broken_partners and len(state.restored_partners) < len(state.broken_partners))
        or state.swap_started,
    )


def callback_payload(event: EventType, state: SagaState, at: datetime) -> dict[str, Any]:
    """What a subscriber receives: the Standard Webhooks shape (type, timestamp, data)."""
    pending = state.pending_decision
    data: dict[str, Any] = {
        "rotation_id": state.saga_id,
        "site": state.site,
        "change_id": state.change_id,
        "state": state.status,
        "step": state.step,
        "reason": state.reason or state.hold_reason,
        "waiting_for": list(state.gate_waiting_for),
        "pending_decision": pending.model_dump(mode="json") if pending else None,
        "certificate_fingerprint_sha256": state.certificate.fingerprint_sha256,
        "requested_by": state.requested_by,
        "rotation_url": f"/v1/rotations/{state.saga_id}",
    }
    if event == "exposure.exceeded" and state.exposure_alert is not None:
        data["exposure"] = state.exposure_alert.model_dump(mode="json")
    return {"type": event, "timestamp": at.isoformat(), "data": data}
