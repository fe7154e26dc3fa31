"""Timestamps that are UTC but may come without their zone. Every service writes its
timestamps in UTC; PostgreSQL hands them back aware, SQLite (the embedded mode) keeps no zone
and hands them back naive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """`value`, known to be in UTC, made aware if it came naive (None stays None)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
