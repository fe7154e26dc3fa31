"""Rows of a watch's clients by the 64-bit hash of their uniqueId, in sorted numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IndexArray = npt.NDArray[np.int64]
_SIGN = np.uint64(1 << 63)  # flipped, it maps signed order onto unsigned order
_MOVE_CHUNK = 65_536


class HashIndex:
    """hash(uniqueId) -> row, as two sorted numpy arrays (12 bytes a client).

    With `directory`, it also keeps where each run of keys sharing their top bits starts (a
    few keys a run, ~4 bytes a client): a lookup then reads a handful of neighbouring keys
    instead of the ~20 scattered ones of a binary search over a million, which made finding
    the rows of a page the largest cost of taking it. An index that changes on every page
    (the recent additions) goes without: rebuilding it would cost more than it saves.
    """

    def __init__(self, *, directory: bool = False) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int32)
        self._directory = directory
        self._shift = np.uint64(63)
        self._starts = np.zeros(3, dtype=np.int64)

    @property
    def size(self) -> int:
        return int(self.keys.size)

    def find(self, keys: IndexArray, rows: IndexArray) -> None:
        """Fill in `rows` where it is still -1 and the key is here."""
        if not self.keys.size:
            return
        at = self._lower_bound(keys) if self._directory else np.searchsorted(self.keys, keys)
        at = np.minimum(at, self.keys.size - 1)
        hit = (self.keys[at] == keys) & (rows < 0)
        rows[hit] = self.rows[at[hit]]

    def add(self, keys: IndexArray, rows: npt.NDArray[np.integer[Any]]) -> None:
        """Merge keys that are not here yet (a key of the index is never added again).

        In place: the arrays are lengthened (realloc, which moves a large block's pages
        rather than copying them) and the old entries moved back from the end, a chunk at a
        time. A merged copy beside the old arrays held both at once: 12 MB more at 1M clients,
        the full scan's peak.
        """
        if not keys.size:
            return
        order = np.argsort(keys)
        keys, rows = keys[order], rows[order].astype(np.int32)
        n = self.keys.size
        at = np.searchsorted(self.keys, keys)  # how many old keys are below each new one
        self.keys.resize(n + keys.size, refcheck=False)  # no views of them are handed out
        self.rows.resize(n + keys.size, refcheck=False)
        end = n
        while end > 0:  # each old entry moves right by the number of new keys below it
            start = max(0, end - _MOVE_CHUNK)
            # Counted from the new keys' places, not searched per old entry: the recent index
            # takes a page on every page, and a search per old entry made that O(n log k).
            below, upto = np.searchsorted(at, (start, end))
            shift = below + np.cumsum(np.bincount(at[below:upto] - start, minlength=end - start))
            old_keys, old_rows = self.keys[start:end].copy(), self.rows[start:end].copy()
            to = np.arange(start, end) + shift
            self.keys[to], self.rows[to] = old_keys, old_rows
            end = start
        new_at = at + np.arange(keys.size)
        self.keys[new_at], self.rows[new_at] = keys, rows
        if self._directory:
            self._index_runs()

    def _runs(self, keys: IndexArray) -> npt.NDArray[np.uint64]:
        return (keys.view(np.uint64) ^ _SIGN) >> self._shift

    def _index_runs(self) -> None:
        bits = max(1, self.keys.size.bit_length() - 2)  # ~2-4 keys a run
        self._shift = np.uint64(64 - bits)
        # Each run's first possible key, searched for: no temporary as large as the keys.
        firsts = (np.arange(1 << bits, dtype=np.uint64) << self._shift) ^ _SIGN
        self._starts = np.empty((1 << bits) + 1, dtype=np.int64)
        self._starts[:-1] = np.searchsorted(self.keys, firsts.view(np.int64))
        self._starts[-1] = self.keys.size

    def _lower_bound(self, keys: IndexArray) -> IndexArray:
        """Per key, the first position whose key is not less: a binary search inside its run."""
        run = self._runs(keys).astype(np.int64)
        lo, hi = self._starts[run], self._starts[run + 1]
        last = self.keys.size - 1
        while True:
            open_ = lo < hi
            if not open_.any():
                return lo
            mid = (lo + hi) >> 1
            less = self.keys[np.minimum(mid, last)] < keys
            lo = np.where(open_ & less, mid + 1, lo)
            hi = np.where(open_ & ~less, mid, hi)
