"""Every client a watch follows, held in columns so a million of them fit in a few hundred MB.

A client is a row number. One dict maps uniqueId to the row (the one per-client Python object
besides its id string); everything else lives in numpy columns and one byte buffer of names.
Policy serials are interned: a fleet holds a handful of distinct ones per group.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from certrotate_shared.messages.common import GroupTarget
from client_monitor.domain.serials import is_target_or_later

DAY_MS = 86_400_000
IndexArray = npt.NDArray[np.int64]


class MalformedComputerError(ValueError):
    """A computer record whose fields have types SEPM's definition does not give them."""


@dataclass(frozen=True)
class ClientRow:
    """One client as the operator lists show it."""

    unique_id: str
    computer_name: str
    group: str
    online: bool
    last_update_ms: int
    profile_serial: str

    def days_offline(self, now_ms: int) -> float:
        return 0.0 if self.online else max(0.0, (now_ms - self.last_update_ms) / DAY_MS)


class ClientTable:
    """Per-client state of one watch: group, serial, reached, online, lastUpdateTime, name."""

    def __init__(self, groups: Sequence[GroupTarget], capacity: int = 1024) -> None:
        self.groups = list(groups)
        self._group_row = {g.group_id.upper(): i for i, g in enumerate(self.groups)}
        self._rows: dict[str, int] = {}
        self._ids: list[str] = []
        self._serials: list[str] = []
        self._serial_ids: dict[str, int] = {}
        # reached[group row, serial id]: does that serial satisfy that group's target?
        self._reach = np.zeros((max(len(self.groups), 1), 0), dtype=bool)
        self._names = bytearray()
        self.size = 0
        self.max_last_update_ms = 0
        capacity = max(capacity, 16)
        self.group = np.full(capacity, -1, dtype=np.int16)  # -1: left the watched groups
        self.serial = np.zeros(capacity, dtype=np.int32)
        self.reached = np.zeros(capacity, dtype=bool)
        self.online = np.zeros(capacity, dtype=bool)
        self.last_update = np.zeros(capacity, dtype=np.int64)
        self._name_at = np.zeros(capacity, dtype=np.int64)
        self._name_len = np.zeros(capacity, dtype=np.int32)
        self._order: tuple[IndexArray, list[str]] | None = None

    # -- ingest ---------------------------------------------------------------------------
    def ingest(self, computers: Iterable[Mapping[str, Any]]) -> int:
        """Take one page of SEPM computer records; returns how many were watched clients."""
        rows: array[int] = array("q")
        groups: array[int] = array("h")
        serials: array[int] = array("i")
        online: array[int] = array("b")
        updated: array[int] = array("q")
        group_row, known, serial_ids = self._group_row, self._rows, self._serial_ids
        for record in computers:
            unique_id = record.get("uniqueId")
            if not unique_id:
                continue
            try:
                group = record.get("group") or {}
                g = group_row.get(str(group.get("id") or "").upper(), -1)
                serial = record.get("profileSerialNo") or ""
                status = record.get("onlineStatus")
                last_update = int(record.get("lastUpdateTime") or 0)
                if not isinstance(serial, str) or status not in (0, 1, None):
                    raise TypeError("profileSerialNo or onlineStatus")
            except (AttributeError, TypeError, ValueError) as exc:
                # Counting such a client as "not reached" or "offline" would be a guess, and
                # the same server answers the same way on the next scan: refuse, once.
                raise MalformedComputerError(
                    f"computer {unique_id}: unexpected field types ({exc})"
                ) from None
            row = known.get(unique_id)
            if row is None:
                if g < 0:
                    continue  # a client of a group we do not watch
                row = self._add(unique_id, str(record.get("computerName") or ""))
            sid = serial_ids.get(serial)
            if sid is None:
                sid = self._intern(serial)
            rows.append(row)
            groups.append(g)
            serials.append(sid)
            online.append(1 if status == 1 else 0)
            updated.append(last_update)
        if not rows:
            return 0
        idx = np.frombuffer(rows, dtype=np.int64)
        g_col = np.frombuffer(groups, dtype=np.int16)
        s_col = np.frombuffer(serials, dtype=np.int32)
        u_col = np.frombuffer(updated, dtype=np.int64)
        self.group[idx] = g_col
        self.serial[idx] = s_col
        self.online[idx] = np.frombuffer(online, dtype=np.int8) != 0
        self.last_update[idx] = u_col
        self.reached[idx] = (g_col >= 0) & self._reach[np.maximum(g_col, 0), s_col]
        self.max_last_update_ms = max(self.max_last_update_ms, int(u_col.max()))
        return len(rows)

    def _add(self, unique_id: str, name: str) -> int:
        row = self.size
        if row == self.group.size:
            self._grow()
        encoded = name.encode()
        self._name_at[row] = len(self._names)
        self._name_len[row] = len(encoded)
        self._names += encoded
        self._rows[unique_id] = row
        self._ids.append(unique_id)
        self.size = row + 1
        return row

    def _grow(self) -> None:
        capacity = self.group.size * 2
        for column in ("group", "serial", "reached", "online", "last_update", "_name_at"):
            old = getattr(self, column)
            new = np.full(capacity, -1, dtype=old.dtype) if column == "group" else None
            if new is None:
                new = np.zeros(capacity, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, column, new)
        name_len = np.zeros(capacity, dtype=np.int32)
        name_len[: self._name_len.size] = self._name_len
        self._name_len = name_len

    def _intern(self, serial: str) -> int:
        sid = len(self._serials)
        self._serials.append(serial)
        self._serial_ids[serial] = sid
        column = np.array(
            [is_target_or_later(serial, g.target_serial) for g in self.groups] or [False],
            dtype=bool,
        )
        self._reach = np.concatenate([self._reach, column[:, None]], axis=1)
        return sid

    # -- reading --------------------------------------------------------------------------
    def watched(self) -> npt.NDArray[np.bool_]:
        """Mask of rows that belong to a watched group right now."""
        return self.group[: self.size] >= 0

    def row(self, i: int) -> ClientRow:
        at, length = int(self._name_at[i]), int(self._name_len[i])
        g = int(self.group[i])
        return ClientRow(
            unique_id=self._ids[i],
            computer_name=self._names[at : at + length].decode(errors="replace"),
            group=self.groups[g].full_path_name if g >= 0 else "",
            online=bool(self.online[i]),
            last_update_ms=int(self.last_update[i]),
            profile_serial=self._serials[int(self.serial[i])],
        )

    def unique_id(self, i: int) -> str:
        return self._ids[i]

    def id_order(self) -> IndexArray:
        """Every row, ordered by uniqueId: the lists' stable order (kept until a client is added)."""
        return self._sorted()[0]

    def position_after(self, unique_id: str) -> int:
        """Where in `id_order()` the first client after this uniqueId is."""
        return bisect.bisect_right(self._sorted()[1], unique_id)

    def _sorted(self) -> tuple[IndexArray, list[str]]:
        if self._order is None or self._order[0].size != self.size:
            ids = self._ids
            order = sorted(range(self.size), key=ids.__getitem__)
            self._order = (np.array(order, dtype=np.int64), [ids[i] for i in order])
        return self._order

    def rows(self, indices: IndexArray) -> Iterator[ClientRow]:
        for i in indices.tolist():
            yield self.row(i)

    def __len__(self) -> int:
        return self.size
