"""The orchestrator consumes every event a step of its saga table waits for."""

from __future__ import annotations

import pytest

from certrotate_shared.messages.dead_letters import MessageDeadLettered
from orchestrator.domain.steps import TABLES
from orchestrator.service_layer.handlers import HANDLERS

pytestmark = pytest.mark.unit


def test_every_answer_a_step_waits_for_reaches_the_saga():
    answers = {
        event
        for table in TABLES.values()
        for step in table
        for event in (step.succeeded, step.failed)
        if event is not None
    }
    missing = sorted(e.type_name() for e in answers - set(HANDLERS))
    assert not missing, f"a rotation would wait forever for: {missing}"
    assert MessageDeadLettered in HANDLERS
