"""History entries read as one line without JSON, whatever their payload (issue 14 item 6)."""

from __future__ import annotations

import pytest

from certrotate_shared.history_text import entry_summary

pytestmark = pytest.mark.unit


def test_an_unknown_event_shows_its_scalar_fields_not_json() -> None:
    entry = {
        "kind": "event",
        "type": "SomethingNewHappened",
        "detail": {
            "site": "site-a",
            "idempotency_key": "k:1",
            "server": "sepm-a1",
            "attempts": 3,
            "nested": {"a": {"b": 1}},
            "names": ["x", "y"],
            "error": "connection refused\nby the host",
        },
    }
    text = entry_summary(entry)
    assert text == "attempts 3, names x, y, error connection refused by the host"


def test_a_decision_names_its_reason_change_and_accepted_clients() -> None:
    entry = {
        "kind": "operator",
        "type": "DecisionMade",
        "detail": {
            "decision": "proceed",
            "reason": "laptops in storage",
            "change_id": "CHG1",
            "accepted_clients": [{"id": "c1"}, {"id": "c2"}],
        },
    }
    assert entry_summary(entry) == (
        "proceed: laptops in storage (change CHG1); 2 clients accepted at risk"
    )


def test_a_payload_of_an_unexpected_shape_falls_back_instead_of_failing() -> None:
    entry = {"kind": "event", "type": "ReplicationRestored", "detail": {"partners": "site-b"}}
    assert entry_summary(entry) == "partners site-b"
