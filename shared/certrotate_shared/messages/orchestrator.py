"""Messages the orchestrator itself publishes: alerts for people and monitoring."""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.registry import Event, register


@register
class VerificationExposureExceeded(Event):
    """Certificate verification has been off longer than the allowed exposure: an alert."""

    site: str
    rotation_id: str
    verification_off_since: datetime
    limit_days: float
    step: str
