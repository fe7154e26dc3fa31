"""Maintenance windows: a cron expression for the opening, a duration, a time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from orchestrator.domain.state import MaintenanceWindow


class InvalidWindowError(ValueError):
    """The window cannot be evaluated (bad cron expression or unknown time zone)."""


# A window that opens less often than this would keep verification off for too long anyway.
HORIZON = timedelta(days=366)


def check_window(window: MaintenanceWindow, now: datetime) -> None:
    """Raise InvalidWindowError with a message an operator can act on."""
    try:
        ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidWindowError(f"unknown time zone {window.timezone!r}") from None
    if not croniter.is_valid(window.cron):
        raise InvalidWindowError(f"invalid cron expression {window.cron!r}")
    try:
        opening = next_opening(window, now)
    except (CroniterBadDateError, ValueError, OverflowError):
        opening = None
    if opening is None or opening - now > HORIZON:
        raise InvalidWindowError(
            f"the maintenance window {window.cron!r} does not open within the next year "
            f"(from {now.date().isoformat()}); the rotation could never swap"
        )


def is_open(window: MaintenanceWindow, now: datetime) -> bool:
    """True when `now` falls inside an opening of the window."""
    local = now.astimezone(ZoneInfo(window.timezone))
    # The latest opening at or before now (croniter's get_prev is strictly before).
    last_open = croniter(window.cron, local + timedelta(seconds=1)).get_prev(datetime)
    return bool(local < last_open + timedelta(minutes=window.duration_minutes))


def next_opening(window: MaintenanceWindow, now: datetime) -> datetime:
    """The next time the window opens after `now`, in UTC."""
    local = now.astimezone(ZoneInfo(window.timezone))
    opening: datetime = croniter(window.cron, local).get_next(datetime)
    return opening.astimezone(UTC)


def closes_at(window: MaintenanceWindow, now: datetime) -> datetime | None:
    """When the currently open window closes (None if it is closed now)."""
    if not is_open(window, now):
        return None
    local = now.astimezone(ZoneInfo(window.timezone))
    last_open: datetime = croniter(window.cron, local + timedelta(seconds=1)).get_prev(datetime)
    return (last_open + timedelta(minutes=window.duration_minutes)).astimezone(UTC)
