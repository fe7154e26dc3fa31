"""A live watch's client lists (pending, at risk, stale, stragglers) read from its table: the
pages the API serves, the lists an approver accepts, and the list saved when the watch closes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import numpy as np

from client_monitor.domain.clients import ClientRow, ClientTable
from client_monitor.domain.propagation import ClientStatus, masks


class ClientLists:
    """The clients of one watch's table by status, judged at the service's time of asking."""

    def __init__(
        self, table: ClientTable, *, stale_horizon_days: float, now: Callable[[], datetime]
    ) -> None:
        self.table = table
        self.stale_horizon_days = stale_horizon_days
        self._now = now

    def select(
        self, status: ClientStatus, *, after: str | None = None, limit: int | None = None
    ) -> tuple[np.ndarray, int, str | None]:
        """Rows of clients in that status now, in uniqueId order after the client `after`, at
        most `limit` of them; the SEPM-time instant they were judged at; the uniqueId a next
        page starts after (None when this is the last page)."""
        now_ms = _ms(self._now())
        m = masks(self.table, now_ms=now_ms, stale_horizon_days=self.stale_horizon_days)
        order = self.table.id_order()
        if after is not None:
            order = order[self.table.position_after(after) :]
        rows = order[m.of(status)[order]]
        if limit is None or rows.size <= limit:
            return rows, now_ms, None
        rows = rows[:limit]
        return rows, now_ms, self.table.unique_id(int(rows[-1]))

    def stored_rows(self, rows: np.ndarray, now_ms: int) -> Iterator[dict[str, Any]]:
        """Those rows as the tables store them (the saved and the accepted lists)."""
        for i in rows.tolist():
            row: ClientRow = self.table.row(i)
            yield {
                "unique_id": row.unique_id,
                "computer_name": row.computer_name,
                "group_path": row.group,
                "online": row.online,
                "last_update_ms": row.last_update_ms,
                "days_offline": round(row.days_offline(now_ms), 2),
                "profile_serial": row.profile_serial,
            }

    def pending_records(self) -> Iterator[dict[str, Any]]:
        """The pending clients as rows of the table saved when a watch closes."""
        now_ms = _ms(self._now())
        m = masks(self.table, now_ms=now_ms, stale_horizon_days=self.stale_horizon_days)
        rows = np.flatnonzero(m.pending)
        for i, stored in zip(rows.tolist(), self.stored_rows(rows, now_ms), strict=True):
            yield {**stored, "stale": not bool(m.seen[i])}


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
