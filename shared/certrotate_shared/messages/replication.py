"""Messages of the replication service: inspect, break and restore partnerships."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.registry import Command, Event, register


class _ReplicationCommand(Command):
    service: ClassVar[str] = "replication"


class PartnerStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    status_code: str
    last_successful_run_time: int | None = None


@register
class InspectSite(_ReplicationCommand):
    """Pre-flight: read the site's version and its replication partners."""

    site: SiteTarget


@register
class SiteInspected(Event):
    site: str
    version: str
    replicated: bool
    partners: list[PartnerStatus]


@register
class SiteInspectionFailed(Event):
    site: str
    reason: str
    retryable: bool


@register
class BreakReplication(_ReplicationCommand):
    """Step 1: delete these partnerships (a host operation)."""

    site: SiteTarget
    partners: list[str]


@register
class ReplicationBroken(Event):
    site: str
    broken_partners: list[str]


@register
class ReplicationBreakFailed(Event):
    site: str
    reason: str
    retryable: bool
    broken_partners: list[str]


@register
class RestoreReplication(_ReplicationCommand):
    """Step 7: re-add exactly these partnerships, replicate now, wait for SUCCEEDED."""

    site: SiteTarget
    partners: list[str]


@register
class ReplicationRestored(Event):
    site: str
    partners: list[PartnerStatus]


@register
class ReplicationRestoreFailed(Event):
    site: str
    reason: str
    retryable: bool
    status_code: str | None = None
