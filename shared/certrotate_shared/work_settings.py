"""The work runner's settings (certrotate_shared.work_runner), named alike in every worker
service; each service keeps its own defaults and says what its work is."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def work_lease_field(default: float, *, work: str) -> Any:
    """`work_lease_s`: how long a replica's hold on one piece of work lasts unrenewed."""
    return Field(
        default=default,
        gt=0,
        description=(
            f"How long a replica's hold on {work} lasts without renewal (real seconds, even "
            "with an accelerated clock); a crashed replica's work moves to another after it."
        ),
    )


def work_poll_field(default: float, *, work: str) -> Any:
    """`work_poll_s`: how often the runner looks for due work."""
    return Field(
        default=default,
        gt=0,
        description=(
            f"How often (real seconds) the work runner looks for due {work} and renews its "
            "holds (a handler also wakes it when it accepts a command)."
        ),
    )


def work_concurrency_field(default: int, *, work: str) -> Any:
    """`work_concurrency`: how many pieces of work one replica works on at once."""
    return Field(default=default, ge=1, description=f"{work} worked on at once by one replica.")
