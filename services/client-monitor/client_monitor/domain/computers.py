"""A page of SEPM computers as a watch keeps them: six columns, not a record per computer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ComputerPage:
    """One GET /computers page, column by column, in the page's order.

    The adapter that reads SEPM's answer has checked the types: a computer without a group
    has None here, missing names and serials are "", a missing lastUpdateTime is 0.
    """

    unique_ids: list[str]
    computer_names: list[str]
    group_ids: list[str | None]
    serials: list[str]
    online: list[bool]
    last_update_ms: list[int]

    def __len__(self) -> int:
        return len(self.unique_ids)
