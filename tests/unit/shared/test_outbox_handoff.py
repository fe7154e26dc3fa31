"""The hand-off between a process's units of work and its relay (outbox_signal): what the relay
may publish without reading the table, and when it must read it instead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from certrotate_shared.outbox_signal import HandedRow, OutboxSignal

pytestmark = pytest.mark.unit


def _row(n: int, key: str = "saga") -> HandedRow:
    return HandedRow(id=n, topic="t", key=key, value=b"%d" % n, created_at=datetime.now(UTC))


SAGA = frozenset({"saga"})


def test_rows_go_out_in_the_order_their_transactions_took_their_places():
    """A transaction that depends on another commits after it, so it reserves after it: the
    relay must not publish the later one while the earlier is still committing."""
    signal = OutboxSignal()
    first, second = signal.reserve(SAGA), signal.reserve(SAGA)
    signal.settle(second, [_row(2)])
    assert signal.take() == []
    assert signal.outstanding()
    signal.settle(first, [_row(1)])
    assert [r.id for r in signal.take()] == [1, 2]
    assert not signal.outstanding()


def test_another_sagas_commit_does_not_wait_behind_one_still_committing():
    """The broker keeps order per key (a saga's partition) and no further: a saga's step must
    not wait for an unrelated saga's commit, but it must for its own saga's earlier one, and
    so must anything of that saga queued behind it."""
    signal = OutboxSignal()
    slow = signal.reserve(frozenset({"a"}))
    other = signal.reserve(frozenset({"b"}))
    same = signal.reserve(frozenset({"a", "c"}))
    behind = signal.reserve(frozenset({"c"}))
    for handoff, row in ((other, _row(2, "b")), (same, _row(3, "a")), (behind, _row(4, "c"))):
        signal.settle(handoff, [row])
    assert [r.id for r in signal.take()] == [2]
    signal.settle(slow, [_row(1, "a")])
    assert [r.id for r in signal.take()] == [1, 3, 4]


def test_a_failed_commit_releases_its_place_and_asks_for_a_read():
    """A COMMIT that failed may still have committed: the table, not the hand-off, says."""
    signal = OutboxSignal()
    failed, kept = signal.reserve(SAGA), signal.reserve(SAGA)
    assert not signal.read_requested()
    signal.settle(failed, None)
    signal.settle(kept, [_row(7)])
    assert [r.id for r in signal.take()] == [7]
    assert signal.read_requested()
    assert not signal.read_requested()  # asked once, answered once


def test_hand_offs_nobody_takes_stay_bounded_and_turn_into_a_read():
    """A process whose relay does not drain (another replica holds the lock, or a broker
    outage holds it up) must not pile up rows in memory."""
    signal = OutboxSignal()
    for n in range(signal.max_handoffs + 5):
        signal.settle(signal.reserve(SAGA), [_row(n)])
    taken = signal.take()
    assert len(taken) == signal.max_handoffs
    assert taken[0].id == 5  # the oldest were dropped: they are in the table
    assert signal.read_requested()


def test_another_replica_draining_forgets_the_hand_offs():
    """Its commits sent a NOTIFY (this relay did not drain): the one that drains is awake."""
    signal = OutboxSignal()
    signal.settle(signal.reserve(SAGA), [_row(1)])
    assert signal.forget() is False
    assert signal.take() == [] and not signal.outstanding()


def test_hand_offs_taken_while_this_relay_drained_ask_to_wake_the_next_one():
    """Those commits went without a NOTIFY: if this relay lost the lock before publishing
    them, the replica that took it must be woken to read them."""
    signal = OutboxSignal()
    signal.draining = True
    quiet = signal.reserve(SAGA)
    assert quiet.quiet
    signal.draining = False
    signal.settle(quiet, [_row(1)])
    signal.settle(signal.reserve(SAGA), [_row(2)])
    assert signal.forget() is True
