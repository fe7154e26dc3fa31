"""Maintenance windows: a cron expression for the opening, a duration, a time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from orchestrator.domain.state import MaintenanceWindow


class InvalidWindowError(ValueError):
    """The window cannot be evaluated (bad cron expression or unknown time zone)."""


def check_window(window: MaintenanceWindow) -> None:
    """Raise InvalidWindowError with a message an operator can act on."""
    try:
        ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidWindowError(f"unknown time zone {window.timezone!r}") from None
    if not croniter.is_valid(window.cron):
        raise InvalidWindowError(f"invalid cron expression {window.cron!r}")


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
