"""Messages of the client-monitor service: propagation watches over the fleet."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from certrotate_shared.messages.common import GroupTarget, SiteTarget
from certrotate_shared.registry import Command, Event, register


class _MonitorCommand(Command):
    service: ClassVar[str] = "client-monitor"


@register
class AwaitPolicyPropagation(_MonitorCommand):
    """Steps 3 and 6: watch until every client seen within the horizon has its group's target."""

    site: SiteTarget
    watch_id: str
    groups: list[GroupTarget]
    stale_horizon_days: float = 30.0
    # Fraction of the clients seen within the horizon that must have the policy (1.0 = all).
    threshold: float = 1.0
    deadline: datetime


@register
class CancelPropagationWatch(_MonitorCommand):
    """Stop a watch early (the saga was cancelled or moved on)."""

    watch_id: str


class PropagationCounts(Event):
    """Counts common to progress, completion and stall events."""

    site: str
    watch_id: str
    total: int
    reached: int
    pending_online: int
    pending_offline: int
    # "0-1", "1-7", "7-30", "30+" days offline -> clients pending in that bucket.
    pending_offline_by_days: dict[str, int]
    # Clients still verifying the old certificate: cut off if the swap ran now.
    orphan_risk: int
    # Pending clients not seen within the stale horizon: listed, not waited on.
    stale: int
    percent: float
    forecast_complete_at: datetime | None = None
    observed_at: datetime


@register
class PropagationProgressed(PropagationCounts):
    pass


@register
class PolicyPropagated(PropagationCounts):
    pass


@register
class PropagationStalled(PropagationCounts):
    reason: str


@register
class PropagationWatchFailed(Event):
    site: str
    watch_id: str
    reason: str
    retryable: bool
