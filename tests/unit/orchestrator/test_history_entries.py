"""Typed history entries store exactly the rows the history page has always shown, and a stored
row reads back as the entry that wrote it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.domain.history import (
    AlertRaised,
    CommandSent,
    EventIgnored,
    EventReceived,
    HistoryEntry,
    Noted,
    OperatorActed,
    TimerWentOff,
    entry_from_row,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BLANK = {"step": None, "message_id": None, "causation_id": None, "actor": None, "detail": None}

# (entry, the row the pre-typed code wrote for it)
ROWS: list[tuple[HistoryEntry, dict[str, object]]] = [
    (
        CommandSent(at=AT, type="BreakReplication", step="break_replication", message_id="m1",
                    causation_id="c1", payload={"site": "site-a", "partners": ["site-b"]}),
        {"at": AT, "kind": "command", "type": "BreakReplication", "step": "break_replication",
         "message_id": "m1", "causation_id": "c1",
         "detail": {"site": "site-a", "partners": ["site-b"]}},
    ),
    (
        CommandSent(at=AT, type="ConfirmOperatorTask", actor="ops", message_id="m2",
                    payload={"task_id": "t1", "confirmed_by": "ops"}),
        {"at": AT, "kind": "command", "type": "ConfirmOperatorTask", "actor": "ops",
         "message_id": "m2", "detail": {"task_id": "t1", "confirmed_by": "ops"}},
    ),
    (
        AlertRaised(at=AT, type="VerificationExposureExceeded", step="gates", message_id="m3",
                    payload={"site": "site-a", "limit_days": 21.0}),
        {"at": AT, "kind": "alert", "type": "VerificationExposureExceeded", "step": "gates",
         "message_id": "m3", "causation_id": None,
         "detail": {"site": "site-a", "limit_days": 21.0}},
    ),
    (
        EventReceived(at=AT, type="ReplicationBroken", step="disable_verification",
                      message_id="m4", causation_id="m1",
                      payload={"site": "site-a", "broken_partners": ["site-b"]}),
        {"at": AT, "kind": "event", "type": "ReplicationBroken", "step": "disable_verification",
         "message_id": "m4", "causation_id": "m1",
         "detail": {"site": "site-a", "broken_partners": ["site-b"]}},
    ),
    (
        EventIgnored(at=AT, type="ReplicationBroken", step="gates", message_id="m5",
                     causation_id="m1", payload={"site": "site-a", "broken_partners": []}),
        {"at": AT, "kind": "ignored", "type": "ReplicationBroken", "step": "gates",
         "message_id": "m5", "causation_id": "m1",
         "detail": {"site": "site-a", "broken_partners": []}},
    ),
    (
        TimerWentOff(at=AT, type="deadline", step="inspect", due_at=AT, ignored=False),
        {"at": AT, "kind": "timer", "type": "deadline", "step": "inspect",
         "detail": {"due_at": "2026-01-05T09:00:00+00:00", "ignored": False}},
    ),
    (
        OperatorActed(at=AT, type="DecisionMade", step="gates", actor="ops",
                      detail={"decision": "proceed", "reason": "accepted", "accepted_count": 3}),
        {"at": AT, "kind": "operator", "type": "DecisionMade", "step": "gates", "actor": "ops",
         "detail": {"decision": "proceed", "reason": "accepted", "accepted_count": 3}},
    ),
    (
        Noted(at=AT, step="inspect", text="rotation failed"),
        {"at": AT, "kind": "note", "type": "note", "step": "inspect",
         "detail": {"text": "rotation failed"}},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "written"), ROWS, ids=[type(e).__name__ for e, _ in ROWS])
def test_each_kind_stores_the_row_the_history_page_has_always_shown(entry, written):
    row = entry.row()
    assert row == {**BLANK, **written}
    # The detail is stored as JSON: its keys in the same order, so the stored text is the same.
    assert list(row["detail"] or {}) == list(written["detail"])


@pytest.mark.parametrize(("entry", "written"), ROWS, ids=[type(e).__name__ for e, _ in ROWS])
def test_a_stored_row_reads_back_as_the_entry_that_wrote_it(entry, written):
    assert entry_from_row({**BLANK, **written}) == entry


def test_a_row_of_an_unknown_kind_is_refused_not_guessed():
    with pytest.raises(ValueError, match="unknown history kind"):
        entry_from_row({**BLANK, "at": AT, "kind": "rumour", "type": "x"})
