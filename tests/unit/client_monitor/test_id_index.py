"""The hash index a watch finds its clients' rows with: every key added is found, at its row,
whatever its value; a key never added is not."""

import numpy as np
import pytest

from client_monitor.domain.id_index import HashIndex

pytestmark = pytest.mark.unit
INT64 = np.iinfo(np.int64)


@pytest.mark.parametrize("directory", [True, False], ids=["with-runs", "plain"])
@pytest.mark.parametrize("move_chunk", [65_536, 1_000], ids=["one-chunk", "many-chunks"])
def test_every_key_added_in_batches_is_found_at_its_row_and_no_other(
    directory, move_chunk, monkeypatch
):
    from client_monitor.domain import id_index

    monkeypatch.setattr(id_index, "_MOVE_CHUNK", move_chunk)  # old entries moved in chunks
    rng = np.random.default_rng(7)
    keys = rng.integers(INT64.min, INT64.max, size=20_000, dtype=np.int64)
    keys[:4] = [INT64.min, INT64.max, 0, -1]  # the ends of the range and around the sign
    keys = np.unique(keys)
    rng.shuffle(keys)
    index = HashIndex(directory=directory)
    for start in range(0, keys.size, 3_000):
        batch = keys[start : start + 3_000]
        index.add(batch, np.arange(start, start + batch.size))
    rows = np.full(keys.size, -1, dtype=np.int64)
    index.find(keys, rows)
    assert rows.tolist() == list(range(keys.size))
    absent = np.setdiff1d(rng.integers(INT64.min, INT64.max, size=5_000, dtype=np.int64), keys)
    missing = np.full(absent.size, -1, dtype=np.int64)
    index.find(absent, missing)
    assert (missing == -1).all()


def test_a_row_already_found_is_left_as_it_is():
    index = HashIndex(directory=True)
    index.add(np.array([5, 9], dtype=np.int64), np.array([0, 1]))
    rows = np.array([7, -1], dtype=np.int64)
    index.find(np.array([5, 9], dtype=np.int64), rows)
    assert rows.tolist() == [7, 1]


@pytest.mark.parametrize("directory", [True, False], ids=["with-runs", "plain"])
def test_keys_that_land_together_below_between_or_above_the_old_ones_are_all_found(
    directory, monkeypatch
):
    from client_monitor.domain import id_index

    monkeypatch.setattr(id_index, "_MOVE_CHUNK", 7)  # many chunks, boundaries inside the gaps
    index = HashIndex(directory=directory)
    batches = [
        np.arange(1_000, 1_100, 10),  # the first keys
        np.arange(-50, 0),  # all below every old key
        np.arange(2_000, 2_040),  # all above
        np.arange(1_001, 1_010),  # many in one gap
        np.array([1_095, -51, 5_000]),  # one below, one in a gap, one above
        np.array([3]),
    ]
    keys: list[int] = []
    for batch in batches:
        index.add(batch.astype(np.int64), np.arange(len(keys), len(keys) + batch.size))
        keys += batch.tolist()
    rows = np.full(len(keys), -1, dtype=np.int64)
    index.find(np.array(keys, dtype=np.int64), rows)
    assert rows.tolist() == list(range(len(keys)))
    assert index.keys.tolist() == sorted(keys)
