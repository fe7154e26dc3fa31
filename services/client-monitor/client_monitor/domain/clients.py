"""Every client a watch follows, held in columns so a million of them fit in about 100 MB.

A client is a row number. Its uniqueId is kept as bytes in a numpy column and found again
through an index of the ids' hashes: sorted numpy arrays, a large one and a small one of the
latest additions merged into it now and then (so an addition never copies the large one). A
hash that two ids share is caught by comparing the ids, and the second id is then looked up by
its text. No per-client Python object lives between scans. The other fields are numpy columns
and one byte buffer of computer names. A page arrives as columns (`ComputerPage`) and is taken
with numpy operations, not a loop of statements per client. Policy serials are interned: a fleet
holds a handful of distinct ones per group.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from certrotate_shared.messages.common import GroupTarget
from client_monitor.domain.computers import ComputerPage
from client_monitor.domain.id_index import HashIndex, IndexArray
from client_monitor.domain.serials import is_target_or_later

DAY_MS = 86_400_000
_key = hash  # a uniqueId's index key (64 bits; ids that share one are told apart by text)
_MERGE_AT = 65_536  # recent additions kept in a small index before they join the large one


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
    """Per-client state of one watch: id, group, serial, reached, online, lastUpdateTime, name."""

    def __init__(self, groups: Sequence[GroupTarget], capacity: int = 1024) -> None:
        self.groups = list(groups)
        self._group_row = {g.group_id.upper(): i for i, g in enumerate(self.groups)}
        self._serials: list[str] = []
        self._serial_ids: dict[str, int] = {}
        # reached[group row, serial id]: does that serial satisfy that group's target?
        self._reach = np.zeros((max(len(self.groups), 1), 0), dtype=bool)
        self._names = bytearray()
        self.size = 0
        self.max_last_update_ms = 0
        capacity = max(capacity, 16)
        self.ids = np.zeros(capacity, dtype="S32")  # uniqueId, UTF-8
        self.group = np.full(capacity, -1, dtype=np.int16)  # -1: left the watched groups
        self.serial = np.zeros(capacity, dtype=np.int32)
        self.reached = np.zeros(capacity, dtype=bool)
        self.online = np.zeros(capacity, dtype=bool)
        self.last_update = np.zeros(capacity, dtype=np.int64)
        self._name_at = np.zeros(capacity, dtype=np.int32)  # the names stay far below 2 GiB
        self._name_len = np.zeros(capacity, dtype=np.int32)
        # hash(uniqueId) -> row: sorted arrays, the latest additions, ids whose hash is taken.
        self._index = HashIndex(directory=True)
        self._recent = HashIndex()
        self._collided: dict[str, int] = {}
        self._order: IndexArray | None = None

    # -- ingest ---------------------------------------------------------------------------
    def ingest(self, page: ComputerPage) -> int:
        """Take one page of SEPM computers; returns how many were watched clients."""
        n = len(page)
        if not n:
            return 0
        gmap = {g: self._group_row.get(g.upper(), -1) if g else -1 for g in set(page.group_ids)}
        groups = np.fromiter(map(gmap.__getitem__, page.group_ids), dtype=np.int16, count=n)
        rows = self._rows_of(page, groups)
        keep = rows >= 0  # known clients, and new ones of watched groups
        if not keep.any():
            return 0
        serials = page.serials
        for serial in set(serials) - self._serial_ids.keys():
            self._intern(serial)
        sids = np.fromiter(map(self._serial_ids.__getitem__, serials), dtype=np.int32, count=n)
        updated = np.array(page.last_update_ms, dtype=np.int64)
        idx, g_col, s_col, u_col = rows[keep], groups[keep], sids[keep], updated[keep]
        self.group[idx] = g_col
        self.serial[idx] = s_col
        self.online[idx] = np.array(page.online, dtype=bool)[keep]
        self.last_update[idx] = u_col
        self.reached[idx] = (g_col >= 0) & self._reach[np.maximum(g_col, 0), s_col]
        self.max_last_update_ms = max(self.max_last_update_ms, int(u_col.max()))
        return int(keep.sum())

    def _rows_of(self, page: ComputerPage, groups: npt.NDArray[np.int16]) -> IndexArray:
        """Each computer's row: found by hash and confirmed by id, added when new and watched,
        -1 for a new client of a group we do not watch."""
        ids = page.unique_ids
        n = len(ids)
        page_ids = self._encode_ids(ids)
        hashes = list(map(_key, ids))
        keys = np.array(hashes, dtype=np.int64)
        rows = np.full(n, -1, dtype=np.int64)
        self._index.find(keys, rows)
        self._recent.find(keys, rows)
        seen_hash = rows >= 0
        confirmed = seen_hash & (self.ids[np.maximum(rows, 0)] == page_ids)
        if confirmed.all():
            return rows
        unconfirmed = ~confirmed
        if not (seen_hash & unconfirmed).any() and not self._collided and len(set(hashes)) == n:
            # The usual page of a first scan: new clients only, each once, no shared hash.
            fresh = np.flatnonzero(unconfirmed & (groups >= 0))
            rows[fresh] = self.size + np.arange(fresh.size)
            self._recent.add(keys[fresh], rows[fresh])
            self._append(fresh.tolist(), page_ids, page)
            self._merge_if_due()
            return rows
        # New clients (added together below), and ids that met another id's hash.
        found = rows.tolist()
        watched, known_hash = (groups >= 0).tolist(), seen_hash.tolist()
        page_new: dict[str, int] = {}
        page_keys: dict[int, int] = {}
        added: list[int] = []
        for i in np.flatnonzero(~confirmed).tolist():
            unique_id = ids[i]
            row = self._collided.get(unique_id)
            if row is None:
                row = page_new.get(unique_id)  # the same client twice in one page
            if row is None:
                if not watched[i]:
                    found[i] = -1  # a client of a group we do not watch
                    continue
                row = page_new[unique_id] = self.size + len(added)
                added.append(i)
                if known_hash[i] or hashes[i] in page_keys:
                    self._collided[unique_id] = row
                else:
                    page_keys[hashes[i]] = row
            found[i] = row
        self._append(added, page_ids, page)
        if page_keys:
            new_keys = np.fromiter(page_keys.keys(), dtype=np.int64, count=len(page_keys))
            new_rows = np.fromiter(page_keys.values(), dtype=np.int64, count=len(page_keys))
            self._recent.add(new_keys, new_rows)
        self._merge_if_due()
        return np.array(found, dtype=np.int64)

    def _encode_ids(self, ids: list[str]) -> npt.NDArray[Any]:
        """The page's ids as UTF-8 in a bytes column, the id column widened to fit them."""
        joined = "".join(ids)
        width = len(ids[0])
        if joined.isascii() and min(map(len, ids)) == width == len(joined) // len(ids):
            # SEPM's ids: 32 hex digits each, so one encode of the page and no copy per id.
            self._fit_ids(width)
            return np.frombuffer(joined.encode(), dtype=f"S{width}")
        encoded = [u.encode() for u in ids]
        self._fit_ids(max(map(len, encoded)))
        return np.array(encoded, dtype=self.ids.dtype)

    def _merge_if_due(self) -> None:
        if self._recent.size >= max(_MERGE_AT, self._index.size // 8):
            self._index.add(self._recent.keys, self._recent.rows)
            self._recent = HashIndex()

    def _append(self, added: list[int], page_ids: npt.NDArray[Any], page: ComputerPage) -> None:
        """New rows for these computers of the page, in order, with their ids and names."""
        if not added:
            return
        start, end = self.size, self.size + len(added)
        while end > self.group.size:
            self._grow()
        self.ids[start:end] = page_ids[added]
        page_names = page.computer_names
        texts = [page_names[i] for i in added]
        joined = "".join(texts)
        if joined.isascii():  # one encode, and the lengths are the texts' own
            data, lengths = joined.encode(), np.fromiter(map(len, texts), np.int64, len(texts))
        else:
            names = [t.encode() for t in texts]
            data, lengths = b"".join(names), np.fromiter(map(len, names), np.int64, len(names))
        self._name_len[start:end] = lengths
        self._name_at[start:end] = len(self._names) + np.cumsum(lengths) - lengths
        self._names += data
        self.size = end

    def _fit_ids(self, width: int) -> None:
        if width > self.ids.dtype.itemsize:
            self.ids = self.ids.astype(f"S{width}")

    def _grow(self) -> None:
        capacity = self.group.size * 2
        columns = ("ids", "group", "serial", "reached", "online", "last_update", "_name_at")
        for column in (*columns, "_name_len"):
            old = getattr(self, column)
            new = np.full(capacity, -1, dtype=old.dtype) if column == "group" else None
            if new is None:
                new = np.zeros(capacity, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, column, new)

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

    def unique_id(self, i: int) -> str:
        return bytes(self.ids[i]).decode()

    def row(self, i: int) -> ClientRow:
        at, length = int(self._name_at[i]), int(self._name_len[i])
        g = int(self.group[i])
        return ClientRow(
            unique_id=self.unique_id(i),
            computer_name=self._names[at : at + length].decode(errors="replace"),
            group=self.groups[g].full_path_name if g >= 0 else "",
            online=bool(self.online[i]),
            last_update_ms=int(self.last_update[i]),
            profile_serial=self._serials[int(self.serial[i])],
        )

    def rows(self, indices: IndexArray) -> Iterator[ClientRow]:
        for i in indices.tolist():
            yield self.row(i)

    def id_order(self) -> IndexArray:
        """Every row, ordered by uniqueId in code-point order (UTF-8 byte order): the lists'
        stable order, kept until a client is added."""
        if self._order is None or self._order.size != self.size:
            self._order = np.argsort(self.ids[: self.size], kind="stable").astype(np.int64)
        return self._order

    def position_after(self, unique_id: str) -> int:
        """Where in `id_order()` the first client after this uniqueId is."""
        order, ids, target = self.id_order(), self.ids, unique_id.encode()
        return bisect.bisect_right(range(order.size), target, key=lambda k: bytes(ids[order[k]]))

    def __len__(self) -> int:
        return self.size
