"""What every response model of the API shares: read models built by the views from trusted
state, never from a request, and fields left out of an answer when they have no value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _absent(value: object) -> bool:
    return value is None


def absent_when_none(description: str) -> Any:
    """A field left out of the answer (not null) when it has no value, as the views always did."""
    return Field(None, exclude_if=_absent, description=description)


class Out(BaseModel):
    # Read models: built by the view from trusted state, never from a request.
    model_config = ConfigDict(extra="forbid")
